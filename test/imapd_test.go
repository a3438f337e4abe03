package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
)

// imapTestdata holds the scripted sessions and messages of imapd.
const imapTestdata = "../pkg/imap/testdata"

// TestIMAPDSessions replays each scripted session against imapd running
// over a pipe (see pkg/imap/testdata/sessions/README).
func TestIMAPDSessions(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(imapTestdata, "sessions", "*.session"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sessions: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".session"), func(t *testing.T) {
			t.Parallel()
			imapReplay(t, f)
		})
	}
}

func imapReplay(t *testing.T, file string) {
	script, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := newRoot(t)
	mbox := r.mailbox("demo")
	lines := strings.Split(strings.TrimSuffix(string(script), "\n"), "\n")
	args := []string{"--root", r.Dir}
	var env []string
	for _, l := range lines {
		if e, ok := strings.CutPrefix(l, "# env: "); ok {
			env = append(env, e)
		}
		if a, ok := strings.CutPrefix(l, "# args: "); ok {
			args = append(args, strings.Fields(a)...)
		}
	}
	cmd := exec.Command(bin(t, "imapd"), args...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("imapd log:\n%s", stderr.String())
		}
	}()
	out := imapLines(stdout)
	delivered := 0
	vars := map[string]string{} // {{$NAME}} captured from the server
	for n, l := range lines {
		where := fmt.Sprintf("%s:%d", filepath.Base(file), n+1)
		switch {
		case strings.HasPrefix(l, "#") || l == "":
		case strings.HasPrefix(l, "D: "):
			// One second apart: the file system's clock is coarser than
			// the time between two deliveries, and ARRIVAL must not tie.
			delivered++
			imapDeliverAt(t, mbox, filepath.Join(imapTestdata, l[3:]),
				time.Date(2026, 1, 2, 3, 4, delivered, 0, time.UTC))
		case strings.HasPrefix(l, "C: ") || l == "C:":
			text := strings.TrimPrefix(strings.TrimPrefix(l, "C:"), " ")
			text = imapRepeatX.ReplaceAllStringFunc(text, func(m string) string {
				n, _ := strconv.Atoi(imapRepeatX.FindStringSubmatch(m)[1])
				return strings.Repeat("x", n)
			})
			text = imapVar.ReplaceAllStringFunc(text, func(m string) string {
				v, ok := vars[m[3:len(m)-2]]
				if !ok {
					t.Fatalf("%s: %s not captured yet", where, m)
				}
				return v
			})
			if _, err := io.WriteString(stdin, text+"\r\n"); err != nil {
				t.Fatalf("%s: write: %v", where, err)
			}
		case strings.HasPrefix(l, "S: ") || l == "S:":
			want := strings.TrimPrefix(strings.TrimPrefix(l, "S:"), " ")
			got, ok := imapNext(out)
			if !ok {
				t.Fatalf("%s: connection closed, want %q", where, want)
			}
			if !imapMatch(want, got, vars) {
				t.Fatalf("%s:\n got %q\nwant %q", where, got, want)
			}
		case l == "E:":
			if got, ok := imapNext(out); ok {
				t.Fatalf("%s: want end of connection, got %q", where, got)
			}
		default:
			t.Fatalf("%s: bad script line %q", where, l)
		}
	}
}

// lineReader delivers the server's lines (without CRLF) on a channel,
// closed at end of file.
func imapLines(r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			ch <- strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		}
	}()
	return ch
}

func imapNext(ch <-chan string) (string, bool) {
	select {
	case l, ok := <-ch:
		return l, ok
	case <-time.After(15 * time.Second):
		return "<timeout>", true
	}
}

var imapRepeatX = regexp.MustCompile(`\{\{x\*([0-9]+)\}\}`)

var imapPlaceholder = regexp.MustCompile(`\{\{(N|\*|\$[A-Z0-9]+)\}\}`)

// imapVar is {{$NAME}}: a number captured from the server, then sent back.
var imapVar = regexp.MustCompile(`\{\{\$[A-Z0-9]+\}\}`)

// matchLine compares a server line with an expected one holding {{N}}
// (a number), {{*}} (anything) and {{$NAME}} (a number, kept in vars
// under NAME when first seen, and then the same number).
func imapMatch(want, got string, vars map[string]string) bool {
	var re strings.Builder
	re.WriteString("^")
	last := 0
	var names []string
	for _, m := range imapPlaceholder.FindAllStringSubmatchIndex(want, -1) {
		re.WriteString(regexp.QuoteMeta(want[last:m[0]]))
		switch p := want[m[2]:m[3]]; {
		case p == "N":
			re.WriteString("[0-9]+")
		case p == "*":
			re.WriteString(".*")
		case vars[p[1:]] != "":
			re.WriteString(regexp.QuoteMeta(vars[p[1:]]))
		default:
			re.WriteString("([0-9]+)")
			names = append(names, p[1:])
		}
		last = m[1]
	}
	re.WriteString(regexp.QuoteMeta(want[last:]) + "$")
	sub := regexp.MustCompile(re.String()).FindStringSubmatch(got)
	if sub == nil {
		return false
	}
	for i, n := range names {
		vars[n] = sub[i+1]
	}
	return true
}

// deliverFile delivers a message file into a Maildir, making it first.
// imapDeliverAt delivers file with the given arrival time.
func imapDeliverAt(t testing.TB, mbox, file string, at time.Time) {
	t.Helper()
	imapDeliver(t, mbox, file)
	for _, m := range messages(t, mbox) {
		if fi, err := os.Stat(m); err == nil && fi.ModTime().After(at) {
			if err := os.Chtimes(m, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func imapDeliver(t testing.TB, mbox, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	if _, err := maildir.Deliver(mbox, data, strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
}

// startIMAPD starts imapd --listen on a free port and returns its address.
func (r *Root) startIMAPD(args ...string) (*Proc, string) {
	addr := freeAddr(r.t)
	p := r.start("imapd", append([]string{"--listen", addr}, args...)...)
	waitListen(r.t, addr)
	return p, addr
}

// Python's imaplib through every implemented command.
func TestIMAPDImaplib(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	_, addr := r.startIMAPD()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("python3", filepath.Join(imapTestdata, "imaplib_client.py"),
		host, port, "demo@example.test", DemoPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

// curl fetches a message by UID and lists a folder (imap:// URLs, RFC 5092).
func TestIMAPDCurl(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	_, addr := r.startIMAPD()
	user := "demo@example.test:" + DemoPassword
	curl := func(url string) string {
		t.Helper()
		out, err := exec.Command("curl", "-sS", "--max-time", "15", "-u", user, url).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
		return string(out)
	}
	got := curl("imap://" + addr + "/INBOX;UID=1")
	want, err := os.ReadFile(filepath.Join(imapTestdata, "simple.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ReplaceAll(got, "\r\n", "\n") != string(want) {
		t.Errorf("curl fetched %q, want %q", got, want)
	}
	if list := curl("imap://" + addr + "/"); !strings.Contains(list, `* LIST (\HasNoChildren \Sent) "/" Sent`) {
		t.Errorf("curl list: %q", list)
	}
}

// Under tcpserver (stdin/stdout mode, one process per connection, peer
// from TCPREMOTEIP), the same imaplib session passes.
func TestIMAPDTcpserver(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	addr := tcpserve(t, nil, bin(t, "imapd"), "--root", r.Dir)
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("python3", filepath.Join(imapTestdata, "imaplib_client.py"),
		host, port, "demo@example.test", DemoPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib under tcpserver: %v\n%s", err, out)
	}
}

// CONDSTORE and QRESYNC across two imapd processes on one root, with
// flags changed by renaming files directly and by a session that did not
// enable them, an expunge by the other process, and the record lost and
// damaged (pkg/imap/testdata/condstore_client.py, Python's imaplib).
func TestIMAPDCondstoreImaplib(t *testing.T) {
	r := newRoot(t)
	mbox := r.mailbox("demo")
	for _, f := range []string{"simple.eml", "reply.eml", "multipart.eml"} {
		imapDeliver(t, mbox, filepath.Join(imapTestdata, f))
	}
	_, addr1 := r.startIMAPD()
	_, addr2 := r.startIMAPD()
	host, port1, _ := strings.Cut(addr1, ":")
	_, port2, _ := strings.Cut(addr2, ":")
	out, err := exec.Command("python3", filepath.Join(imapTestdata, "condstore_client.py"),
		host, port1, port2, "demo@example.test", DemoPassword, mbox).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}
