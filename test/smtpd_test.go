package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailsrv/pkg/queue"
)

// smtpdFilterScript stands in for `queue inject` through MAILSRV_QUEUE (the
// filter interface): it saves each message and its arguments in DIR, or,
// when DIR/exit-code holds a number other than 0, reads the message, says
// why on stderr and exits with that code.
const smtpdFilterScript = `#!/bin/sh
dir=%q
code=$(cat "$dir/exit-code" 2>/dev/null || echo 0)
if [ "$code" != 0 ]; then
	cat >/dev/null
	echo "test filter says no ($code)" >&2
	exit "$code"
fi
n=$(mktemp "$dir/msg.$(date +%%s%%N).XXXXXX") || exit 75
printf '%%s\n' "$@" > "$n.args" || exit 75
cat > "$n" || exit 75
basename "$n"
`

// smtpdFilter is the spool directory of a filter script.
type smtpdFilter struct {
	t   testing.TB
	dir string
}

// useFilter installs the filter script as MAILSRV_QUEUE for the daemons
// this test starts.
func useFilter(t *testing.T) *smtpdFilter {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "filter.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(smtpdFilterScript, dir)), 0755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAILSRV_QUEUE", script)
	return &smtpdFilter{t: t, dir: dir}
}

func (f *smtpdFilter) setExit(code int) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, "exit-code"), []byte(strconv.Itoa(code)+"\n"), 0644); err != nil {
		f.t.Fatal(err)
	}
}

// saved returns the messages the filter saved and their arguments, oldest
// first (the filter runs once per message, one after the other).
func (f *smtpdFilter) saved() (msgs, args []string) {
	f.t.Helper()
	names, err := filepath.Glob(filepath.Join(f.dir, "msg.*"))
	if err != nil {
		f.t.Fatal(err)
	}
	sort.Strings(names) // the names start with the time in nanoseconds
	for _, n := range names {
		if strings.HasSuffix(n, ".args") {
			continue
		}
		msgs = append(msgs, readFile(f.t, n))
		args = append(args, strings.ReplaceAll(strings.TrimSpace(readFile(f.t, n+".args")), "\n", " "))
	}
	return msgs, args
}

// smtpdRoot is the test root, with an alias and a catch-all domain.
func smtpdRoot(t *testing.T) *Root {
	r := newRoot(t)
	r.write("etc/domains", "example.test\ncatchall.test\n")
	r.write("etc/aliases", "info@example.test: demo@example.test\n@catchall.test: demo@example.test\n")
	return r
}

// smtplibSend sends one message per recipient with Python's smtplib and
// prints, for each, "RCPT-CODE DATA-CODE" (DATA-CODE 0 when not reached).
const smtplibSend = `
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
s = smtplib.SMTP(host, port, local_hostname="client.test", timeout=60)
s.ehlo()
for rcpt in sys.argv[3:]:
    s.mail("sender@elsewhere.test")
    code, _ = s.rcpt(rcpt)
    dcode = 0
    if code == 250:
        dcode, _ = s.data("Subject: test\r\nFrom: sender@elsewhere.test\r\n\r\nHello " + rcpt + "\r\n")
    else:
        s.rset()
    print(rcpt, code, dcode)
s.quit()
`

func splitAddr(t testing.TB, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// TestSMTPDRecipients sends with Python's smtplib to a user, an alias, a
// catch-all and a sub-address (accepted and handed to the filter), an
// unknown user (550 5.1.1) and another domain (554 5.7.1, no relaying).
func TestSMTPDRecipients(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	_, addr := r.startSMTPD()
	host, port := splitAddr(t, addr)
	rcpts := []string{"demo@example.test", "info@example.test", "anyone@catchall.test",
		"demo+lists@example.test", "nobody@example.test", "someone@elsewhere.test"}
	out, err := python(t, smtplibSend, append([]string{host, port}, rcpts...)...)
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	want := "demo@example.test 250 250\ninfo@example.test 250 250\nanyone@catchall.test 250 250\n" +
		"demo+lists@example.test 250 250\nnobody@example.test 550 0\nsomeone@elsewhere.test 554 0\n"
	if out != want {
		t.Fatalf("smtplib said\n%s\nwant\n%s", out, want)
	}
	msgs, args := f.saved()
	if len(msgs) != 4 {
		t.Fatalf("filter got %d messages, want 4", len(msgs))
	}
	for i, rcpt := range rcpts[:4] {
		if args[i] != "-f sender@elsewhere.test -- "+rcpt {
			t.Errorf("filter arguments %q", args[i])
		}
		if !strings.HasPrefix(msgs[i], "Received: from client.test ([127.0.0.1])\n\tby mx.example.test (mailsrv) with ESMTP id ") ||
			!strings.Contains(msgs[i], "\n\tfor <"+rcpt+">; ") ||
			!strings.HasSuffix(msgs[i], "\nSubject: test\nFrom: sender@elsewhere.test\n\nHello "+rcpt+"\n") {
			t.Errorf("message %q", msgs[i])
		}
	}
}

// TestSMTPDSwaks sends a message with swaks, a client we did not write.
func TestSMTPDSwaks(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	_, addr := r.startSMTPD()
	out, err := exec.Command("swaks", "--server", addr, "--helo", "swaks.test",
		"--from", "sender@elsewhere.test", "--to", "demo@example.test",
		"--header", "Subject: swaks", "--body", "sent by swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// swaks offers PIPELINING and the rest when it sees them.
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "ENHANCEDSTATUSCODES", "CHUNKING"} {
		if !strings.Contains(string(out), "<-  250-"+ext) && !strings.Contains(string(out), "<-  250 "+ext) {
			t.Errorf("EHLO reply lacks %s:\n%s", ext, out)
		}
	}
	msgs, _ := f.saved()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: swaks\n") || !strings.Contains(msgs[0], "sent by swaks") {
		t.Fatalf("filter got %q", msgs)
	}

	// Relaying through swaks is refused with 554 5.7.1.
	out, err = exec.Command("swaks", "--server", addr, "--from", "sender@elsewhere.test",
		"--to", "someone@elsewhere.test").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "554 5.7.1") {
		t.Fatalf("relay through swaks: %v\n%s", err, out)
	}
}

// smtpRaw is a client that sends exactly the octets it is given: for the
// dialogs no well-behaved client library would produce.
type smtpRaw struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(t testing.TB, addr string) *smtpRaw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := &smtpRaw{t: t, c: c, r: bufio.NewReader(c)}
	s.expect("220 ")
	return s
}

func (s *smtpRaw) send(raw string) {
	s.t.Helper()
	if err := s.c.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		s.t.Fatal(err)
	}
	if _, err := io.WriteString(s.c, raw); err != nil {
		s.t.Fatalf("sending %.40q: %v", raw, err)
	}
}

// expect reads one reply (the last line of a multi-line one) and checks
// its start. The deadline only turns a hang into a failure.
func (s *smtpRaw) expect(want string) string {
	s.t.Helper()
	if err := s.c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		s.t.Fatal(err)
	}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("want %q, got %q, %v", want, line, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		if !strings.HasPrefix(line, want) {
			s.t.Fatalf("want %q, got %q", want, line)
		}
		return line
	}
}

func (s *smtpRaw) cmd(line, want string) string {
	s.t.Helper()
	s.send(line + "\r\n")
	return s.expect(want)
}

func (s *smtpRaw) expectClosed() {
	s.t.Helper()
	if err := s.c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		s.t.Fatal(err)
	}
	if line, err := s.r.ReadString('\n'); err == nil {
		s.t.Fatalf("want the connection closed, got %q", line)
	}
}

// envelope starts a transaction to demo@example.test.
func (s *smtpRaw) envelope() {
	s.t.Helper()
	s.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	s.cmd("RCPT TO:<demo@example.test>", "250 ")
}

// TestSMTPDSmuggling sends SMTP smuggling attempts (bare LF, "\n.\r\n",
// "\r\n.\n", bare CR) to the binary: each is refused with 5xx, nothing
// reaches the queue, the session goes on and the daemon stays up.
func TestSMTPDSmuggling(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	_, addr := r.startSMTPD()
	smuggled := "MAIL FROM:<admin@example.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"
	bodies := []struct{ name, data string }{
		{"bare LF", "Subject: a\r\n\r\none\ntwo\r\n.\r\n"},
		{"LF dot CRLF", "Subject: a\r\n\r\nx\n.\r\n" + smuggled + ".\r\n"},
		{"CRLF dot LF", "Subject: a\r\n\r\nx\r\n.\n" + smuggled + ".\r\n"},
		{"LF dot LF", "Subject: a\r\n\r\nx\n.\n" + smuggled + ".\r\n"},
		{"bare CR", "Subject: a\r\n\r\none\rtwo\r\n.\r\n"},
		{"CR dot CR", "Subject: a\r\n\r\nx\r.\r" + smuggled + ".\r\n"},
	}
	c := dialSMTP(t, addr)
	c.cmd("EHLO client.test", "250 ")
	for _, b := range bodies {
		c.envelope()
		c.cmd("DATA", "354 ")
		c.send(b.data)
		if line := c.expect("5"); !strings.HasPrefix(line, "554 5.6.0 ") {
			t.Errorf("%s: %q", b.name, line)
		}
		c.cmd("NOOP", "250 ")
	}
	// The same through BDAT.
	c.envelope()
	chunk := "Subject: a\r\n\r\nx\n.\r\n" + smuggled
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	c.expect("554 5.6.0 ")
	c.cmd("QUIT", "221 ")
	if msgs, _ := f.saved(); len(msgs) != 0 {
		t.Fatalf("smuggling attempts queued %q", msgs)
	}
	// The daemon is still up and takes a good message.
	c = dialSMTP(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.envelope()
	c.cmd("DATA", "354 ")
	c.send("Subject: fine\r\n\r\nok\r\n.\r\n")
	c.expect("250 ")
	if msgs, _ := f.saved(); len(msgs) != 1 {
		t.Fatalf("filter got %d messages, want 1", len(msgs))
	}
}

// TestSMTPDLimits checks size (SIZE= and actual), recipient count, line
// length and hop count on the binary, with its flags.
func TestSMTPDLimits(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	_, addr := r.startSMTPD("--max-size", "2000", "--max-recipients", "3", "--max-hops", "4")
	host, port := splitAddr(t, addr)

	// smtplib sends SIZE= when the server offers it: 552 at MAIL.
	out, err := python(t, `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=60)
try:
    s.sendmail("sender@elsewhere.test", ["demo@example.test"], "Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 40)
    print("sent")
except smtplib.SMTPSenderRefused as e:
    print(e.smtp_code, e.smtp_error.decode())
# Four recipients, the limit is three: the fourth gets 452, the rest get the message.
refused = s.sendmail("sender@elsewhere.test", ["a@catchall.test", "b@catchall.test", "c@catchall.test", "d@catchall.test"], "Subject: many\r\n\r\nhi\r\n")
print(refused)
s.quit()
`, host, port)
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "552 5.3.4") ||
		lines[1] != "{'d@catchall.test': (452, b'4.5.3 Maximum limit of 3 recipients reached')}" {
		t.Fatalf("smtplib said:\n%s", out)
	}

	c := dialSMTP(t, addr)
	c.cmd("EHLO client.test", "250 ")
	// Too big without SIZE=: refused after the data, session goes on.
	c.envelope()
	c.cmd("DATA", "354 ")
	c.send(strings.Repeat(strings.Repeat("y", 98)+"\r\n", 30) + ".\r\n")
	c.expect("552 5.3.4 ")
	// Too many Received headers: a loop.
	c.envelope()
	c.cmd("DATA", "354 ")
	c.send(strings.Repeat("Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n", 5) + "\r\nx\r\n.\r\n")
	c.expect("554 5.4.6 ")
	// A line of 1001 octets with its CRLF: 500, and the session goes on.
	c.envelope()
	c.cmd("DATA", "354 ")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("z", 999) + "\r\n.\r\n")
	c.expect("500 5.5.0 ")
	c.cmd("NOOP", "250 ")
	// Far longer: 500, and the connection closes, since go-smtp stopped
	// following the stream.
	c.envelope()
	c.cmd("DATA", "354 ")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("z", 1500) + "\r\n.\r\n")
	c.expect("500 5.5.0 ")
	c.expectClosed()
	// A command line over the limit: 500 and closed.
	c = dialSMTP(t, addr)
	c.send("EHLO " + strings.Repeat("h", 1200) + "\r\n")
	c.expect("500 ")
	c.expectClosed()

	msgs, args := f.saved()
	if len(msgs) != 1 || args[0] != "-f sender@elsewhere.test -- a@catchall.test b@catchall.test c@catchall.test" {
		t.Fatalf("filter got %d messages, %q", len(msgs), args)
	}
}

// TestSMTPDTempFailure makes the filter fail with exit 75: the client gets
// 451 and keeps the message; once the filter works again the retry is
// accepted. A permanent refusal (65) gives 554 with the filter's reason.
func TestSMTPDTempFailure(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	_, addr := r.startSMTPD()
	host, port := splitAddr(t, addr)
	send := `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=60)
try:
    s.sendmail("sender@elsewhere.test", ["demo@example.test"], "Subject: retry me\r\n\r\nbody\r\n")
    print("250")
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
`
	f.setExit(75)
	out, err := python(t, send, host, port)
	if err != nil || !strings.HasPrefix(out, "451 4.3.0 ") {
		t.Fatalf("with the queue failing: %v\n%s", err, out)
	}
	if msgs, _ := f.saved(); len(msgs) != 0 {
		t.Fatalf("a message was kept after 451: %q", msgs)
	}
	f.setExit(65)
	out, err = python(t, send, host, port)
	if err != nil || !strings.HasPrefix(out, "554 5.7.1 test filter says no (65)") {
		t.Fatalf("with the filter refusing: %v\n%s", err, out)
	}
	f.setExit(0)
	out, err = python(t, send, host, port)
	if err != nil || out != "250\n" {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	if msgs, _ := f.saved(); len(msgs) != 1 || !strings.Contains(msgs[0], "Subject: retry me\n") {
		t.Fatalf("after the retry the filter has %q", msgs)
	}
}

// TestSMTPDBDAT sends a message in chunks (RFC 3030) over a raw socket.
func TestSMTPDBDAT(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	_, addr := r.startSMTPD()
	c := dialSMTP(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.envelope()
	parts := []string{"Subject: chunked\r\nFrom: a@b.test\r\n", "\r\nfirst li", "ne\r\nsecond line\r\n"}
	for i, p := range parts {
		last := ""
		if i == len(parts)-1 {
			last = " LAST"
		}
		c.send(fmt.Sprintf("BDAT %d%s\r\n%s", len(p), last, p))
		c.expect("250 ")
	}
	c.cmd("QUIT", "221 ")
	msgs, _ := f.saved()
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], "\nSubject: chunked\nFrom: a@b.test\n\nfirst line\nsecond line\n") {
		t.Fatalf("filter got %q", msgs)
	}
}

// TestSMTPDStdio runs smtpd on a pipe, as inetd would with a socket: one
// session on stdin/stdout, and the process exits when it ends.
func TestSMTPDStdio(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	cmd := exec.Command(bin(t, "smtpd"), "--root", r.Dir, "--log", filepath.Join(t.TempDir(), "log"))
	cmd.Env = append(os.Environ(), "TCPREMOTEIP=192.0.2.7", "TCPREMOTEPORT=4321")
	cmd.Stdin = strings.NewReader("EHLO pipe.test\r\nMAIL FROM:<a@elsewhere.test>\r\nRCPT TO:<info@example.test>\r\n" +
		"DATA\r\nSubject: piped\r\n\r\nhi\r\n.\r\nQUIT\r\n")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("smtpd did not exit after QUIT")
	}
	if err != nil {
		t.Fatalf("smtpd: %v\n%s", err, out)
	}
	for _, want := range []string{"220 mx.example.test ESMTP", "354 ", "250 2.0.0 OK: queued as msg.", "221 2.0.0 "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("reply %q missing from\n%s", want, out)
		}
	}
	msgs, _ := f.saved()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "Received: from pipe.test ([192.0.2.7])\n") {
		t.Fatalf("filter got %q", msgs)
	}
}

// TestSMTPDTcpserver runs smtpd under ucspi-tcp's tcpserver, which starts
// it once per connection with the socket on fd 0/1 and TCPREMOTEIP set.
func TestSMTPDTcpserver(t *testing.T) {
	f := useFilter(t)
	r := smtpdRoot(t)
	addr := freeAddr(t)
	host, port := splitAddr(t, addr)
	cmd := exec.Command("tcpserver", "-HRl0", host, port, bin(t, "smtpd"), "--root", r.Dir, "--timeout", "1m")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logBuf strings.Builder
	cmd.Stderr = &lockedStringWriter{b: &logBuf}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-waited
		if t.Failed() {
			t.Logf("tcpserver and smtpd log:\n%s", logBuf.String())
		}
	})
	waitListen(t, addr)
	out, err := python(t, smtplibSend, host, port, "demo@example.test", "nobody@example.test", "info@example.test")
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	if out != "demo@example.test 250 250\nnobody@example.test 550 0\ninfo@example.test 250 250\n" {
		t.Fatalf("smtplib said\n%s", out)
	}
	// A smuggling attempt under tcpserver, and a second session after it.
	c := dialSMTP(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.envelope()
	c.cmd("DATA", "354 ")
	c.send("Subject: a\r\n\r\nx\n.\r\nQUIT\r\n.\r\n")
	c.expect("554 5.6.0 ")
	c.cmd("QUIT", "221 ")
	msgs, _ := f.saved()
	if len(msgs) != 2 || !strings.HasPrefix(msgs[0], "Received: from client.test ([127.0.0.1])\n") {
		t.Fatalf("filter got %q", msgs)
	}
}

type lockedStringWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedStringWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestSMTPDToMaildir is the whole path with no stand-ins: smtpd hands the
// message to its pool of `queue inject --lmtp` processes, `queue run`
// delivers it, and it lands in the user's Maildir with our Received header.
func TestSMTPDToMaildir(t *testing.T) {
	r := smtpdRoot(t)
	r.startQueue()
	_, addr := r.startSMTPD()
	host, port := splitAddr(t, addr)
	out, err := python(t, smtplibSend, host, port, "info@example.test", "nobody@example.test")
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	if out != "info@example.test 250 250\nnobody@example.test 550 0\n" {
		t.Fatalf("smtplib said\n%s", out)
	}
	waitFor(t, time.Minute, "delivery to demo's Maildir", func() bool { return len(messages(t, r.mailbox("demo"))) == 1 })
	got := readFile(t, messages(t, r.mailbox("demo"))[0])
	if !strings.Contains(got, "\nReceived: from client.test ([127.0.0.1])\n\tby mx.example.test (mailsrv) with ESMTP id ") ||
		!strings.HasSuffix(got, "\nSubject: test\nFrom: sender@elsewhere.test\n\nHello info@example.test\n") {
		t.Fatalf("delivered message:\n%s", got)
	}
}

// TestSMTPDDiskFull puts the queue on a 1 MiB tmpfs and sends a 2 MB
// message: the client must get 452 (never 250, never 5xx), the queue must
// hold nothing, and the daemon must go on taking small messages.
func TestSMTPDDiskFull(t *testing.T) {
	r := smtpdRoot(t)
	qdir := filepath.Join(r.Dir, "queue")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", qdir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the tests run as root): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", qdir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", qdir, err, out)
		}
	})
	if err := queue.Create(qdir); err != nil {
		t.Fatal(err)
	}
	p, addr := r.startSMTPD()
	host, port := splitAddr(t, addr)
	out, err := python(t, `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=60)
for n in (20000, 100):
    try:
        s.sendmail("sender@elsewhere.test", ["demo@example.test"], "Subject: size %d\r\n\r\n" % n + ("y" * 98 + "\r\n") * n)
        print("250")
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
s.quit()
`, host, port)
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "452 4.3.1 ") || lines[1] != "250" {
		t.Fatalf("smtplib said:\n%s\nsmtpd log:\n%s", out, p.Log())
	}
	for _, sub := range []string{"tmp", "incoming"} {
		ents, err := os.ReadDir(filepath.Join(qdir, sub))
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if sub == "incoming" {
			want = 1 // the small message
		}
		if len(ents) != want {
			t.Errorf("queue/%s holds %d files, want %d", sub, len(ents), want)
		}
	}
}

// TestSMTPDStdioTimeout checks the idle timeout in stdin/stdout mode, with
// fd 0/1 a socket (as under tcpserver or inetd) and a pipe: smtpd answers
// 421 4.4.2 and exits.
func TestSMTPDStdioTimeout(t *testing.T) {
	r := smtpdRoot(t)
	for _, kind := range []string{"socket", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(bin(t, "smtpd"), "--root", r.Dir, "--timeout", "1s")
			cmd.Stderr = io.Discard
			var client io.ReadWriter
			var closers []io.Closer
			switch kind {
			case "socket":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				sc, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				f, err := sc.(*net.TCPConn).File()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stdin, cmd.Stdout = f, f
				client = c
				closers = append(closers, c, f, sc, ln)
			case "pipe":
				inR, inW, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				outR, outW, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stdin, cmd.Stdout = inR, outW
				client = struct {
					io.Reader
					io.Writer
				}{outR, inW}
				closers = append(closers, inR, inW, outR, outW)
			}
			defer func() {
				for _, c := range closers {
					_ = c.Close()
				}
			}()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if _, err := io.WriteString(client, "EHLO idle.test\r\n"); err != nil {
				t.Fatal(err)
			}
			// Read until the 421; the test's own timeout guards a hang.
			br := bufio.NewReader(client)
			var got []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				got = append(got, strings.TrimSpace(line))
				if strings.HasPrefix(line, "421 4.4.2 ") {
					break
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("smtpd exited with %v", err)
				}
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				t.Fatal("smtpd still runs after its idle timeout")
			}
		})
	}
}

// TestSMTPDQueueMissing removes the queue directory under a running smtpd:
// the client gets 451 (never 250, never 5xx); once the queue is back, the
// same message goes through.
func TestSMTPDQueueMissing(t *testing.T) {
	r := smtpdRoot(t)
	qdir := filepath.Join(r.Dir, "queue")
	p, addr := r.startSMTPD()
	host, port := splitAddr(t, addr)
	send := `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=60)
try:
    s.sendmail("sender@elsewhere.test", ["demo@example.test"], "Subject: queue gone\r\n\r\nbody\r\n")
    print("250")
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
`
	if err := os.RemoveAll(qdir); err != nil {
		t.Fatal(err)
	}
	out, err := python(t, send, host, port)
	if err != nil || !strings.HasPrefix(out, "451 4.3.0 ") {
		t.Fatalf("without a queue: %v\n%s\nsmtpd log:\n%s", err, out, p.Log())
	}
	if err := queue.Create(qdir); err != nil {
		t.Fatal(err)
	}
	out, err = python(t, send, host, port)
	if err != nil || out != "250\n" {
		t.Fatalf("with the queue back: %v\n%s\nsmtpd log:\n%s", err, out, p.Log())
	}
	ents, err := os.ReadDir(filepath.Join(qdir, "incoming"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("queue/incoming: %v, %v", ents, err)
	}
}
