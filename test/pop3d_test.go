package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/tlsconf"
)

// pop3Start starts pop3d --listen on a free port and returns its address.
func (r *Root) pop3Start(args ...string) (*Proc, string) {
	r.t.Helper()
	addr := freeAddr(r.t)
	p := r.start("pop3d", append([]string{"--listen", addr}, args...)...)
	waitListen(r.t, addr)
	return p, addr
}

// pop3Fill delivers n messages to demo@example.test the way deliver does,
// each with a Message-ID <pop3-I@test>; the bodies have bare LFs, lines
// that begin with dots, and one message has no final newline.
func (r *Root) pop3Fill(n int) {
	r.t.Helper()
	dir := r.mailbox("demo")
	if err := maildir.Create(dir); err != nil {
		r.t.Fatal(err)
	}
	for i := range n {
		msg := fmt.Sprintf("From: a@b.test\nTo: demo@example.test\nSubject: pop3 %d\nMessage-ID: <pop3-%d@test>\n\n"+
			"line one\n.starts with a dot\n..two dots\n.\nend", i, i)
		if i%2 == 0 {
			msg += "\n"
		}
		if _, err := maildir.Deliver(dir, []byte(msg), strings.NewReader("")); err != nil {
			r.t.Fatal(err)
		}
	}
}

// pop3Expected is what message i of pop3Fill looks like after a client has
// undone CRLF and byte-stuffing, as Python's poplib does.
func pop3Expected(i int) string {
	return fmt.Sprintf("From: a@b.test\nTo: demo@example.test\nSubject: pop3 %d\nMessage-ID: <pop3-%d@test>\n\n"+
		"line one\n.starts with a dot\n..two dots\n.\nend", i, i)
}

// pop3PoplibScript logs in with Python's poplib, checks STAT against LIST,
// prints the UIDL listing and every message (RETR), deletes the messages
// named in argv[5] (comma-separated numbers), then ends with QUIT, or, if
// argv[6] is "kill", dies by SIGKILL instead of sending QUIT.
const pop3PoplibScript = `
import os, poplib, signal, sys
host, port, user, pw, dele, end = sys.argv[1:7]
p = poplib.POP3(host, int(port), timeout=60)
caps = p.capa()
for c in ("UIDL", "TOP", "USER", "PIPELINING", "RESP-CODES"):
    assert c in caps, caps
p.user(user)
p.pass_(pw)
count, size = p.stat()
resp, listing, _ = p.list()
assert count == len(listing), (count, listing)
assert size == sum(int(l.split()[1]) for l in listing), (size, listing)
resp, uidl, _ = p.uidl()
for l in uidl:
    print("UIDL", l.decode())
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    body = b"\n".join(lines).decode()
    print("MSG", i, repr(body))
if count:
    resp, lines, _ = p.top(1, 1)
    print("TOP", repr(b"\n".join(lines).decode()))
for n in dele.split(","):
    if n:
        p.dele(int(n))
if end == "kill":
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)
print(p.quit().decode())
`

// pop3Poplib runs the poplib script and returns the UIDL lines and the
// messages by number.
func pop3Poplib(t *testing.T, addr, dele, end string) (uidl map[string]string, msgs map[int]string, top string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, err := python(t, pop3PoplibScript, host, port, "demo@example.test", DemoPassword, dele, end)
	if err != nil && !(end == "kill" && strings.Contains(err.Error(), "killed")) {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	uidl = map[string]string{}
	msgs = map[int]string{}
	re := regexp.MustCompile(`^MSG (\d+) '(.*)'$`)
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "UIDL" {
			uidl[f[1]] = f[2]
		}
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			msgs[n] = strings.ReplaceAll(m[2], `\n`, "\n")
		}
		if v, ok := strings.CutPrefix(l, "TOP '"); ok {
			top = strings.ReplaceAll(strings.TrimSuffix(v, "'"), `\n`, "\n")
		}
	}
	return uidl, msgs, top
}

// Python's poplib reads every message intact (CRLF, byte-stuffing, a
// missing final newline), DELE takes effect at QUIT, retrieved messages
// become \Seen for IMAP, and UIDLs stay the same in the next session.
func TestPOP3Poplib(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(5)
	_, addr := r.pop3Start()
	uidl, msgs, top := pop3Poplib(t, addr, "2,4", "quit")
	if len(msgs) != 5 || len(uidl) != 5 {
		t.Fatalf("got %d messages, %d UIDLs", len(msgs), len(uidl))
	}
	for i := 1; i <= 5; i++ {
		if msgs[i] != pop3Expected(i-1) {
			t.Errorf("message %d:\n got %q\nwant %q", i, msgs[i], pop3Expected(i-1))
		}
	}
	if want := strings.SplitAfter(pop3Expected(0), "\n\n")[0] + "line one"; top != want {
		t.Errorf("TOP 1 1:\n got %q\nwant %q", top, want)
	}
	files := messages(t, r.mailbox("demo"))
	if len(files) != 3 {
		t.Fatalf("after DELE 2,4 and QUIT: %v", files)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ":2,S") || !strings.Contains(f, "/cur/") {
			t.Errorf("kept message not marked seen in cur/: %s", f)
		}
	}
	uidl2, _, _ := pop3Poplib(t, addr, "", "quit")
	for n, want := range map[string]string{"1": uidl["1"], "2": uidl["3"], "3": uidl["5"]} {
		if uidl2[n] != want {
			t.Errorf("second session: UIDL %s = %q, want %q", n, uidl2[n], want)
		}
	}
}

// A client killed before QUIT deletes nothing, and its lock goes away with
// its connection.
func TestPOP3ClientKilled(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(3)
	_, addr := r.pop3Start()
	pop3Poplib(t, addr, "1,2,3", "kill")
	if files := messages(t, r.mailbox("demo")); len(files) != 3 {
		t.Fatalf("a session killed before QUIT deleted mail: %v", files)
	}
	waitFor(t, 30*time.Second, "lock released", func() bool {
		_, err := os.Stat(filepath.Join(r.mailbox("demo"), "pop3.lock"))
		return os.IsNotExist(err)
	})
	_, msgs, _ := pop3Poplib(t, addr, "", "quit")
	if len(msgs) != 3 {
		t.Fatalf("next session sees %d messages", len(msgs))
	}
}

// pop3InUseScript logs in twice at once and prints the second answer.
const pop3InUseScript = `
import poplib, sys
host, port1, port2, user, pw = sys.argv[1:6]
a = poplib.POP3(host, int(port1), timeout=60)
a.user(user); a.pass_(pw)
b = poplib.POP3(host, int(port2), timeout=60)
b.user(user)
try:
    b.pass_(pw)
    print("second login accepted")
except poplib.error_proto as e:
    print("second login:", e.args[0].decode())
a.quit()
b.user(user)
print("after quit:", b.pass_(pw).decode())
b.quit()
`

// Two logins to one mailbox: the second gets [IN-USE], also when the two
// sessions are served by different pop3d processes.
func TestPOP3InUseAcrossProcesses(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(1)
	_, addr1 := r.pop3Start()
	_, addr2 := r.pop3Start()
	host, port1, _ := strings.Cut(addr1, ":")
	_, port2, _ := strings.Cut(addr2, ":")
	out, err := python(t, pop3InUseScript, host, port1, port2, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	if !strings.Contains(out, "second login: -ERR [IN-USE]") || !strings.Contains(out, "after quit: +OK") {
		t.Fatalf("poplib:\n%s", out)
	}
}

// pop3d killed by SIGKILL in the middle of a session (under tcpserver, one
// process per connection) deletes nothing, and its lock is broken at the
// next login because its process is gone.
func TestPOP3ServerKilled(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(2)
	addr := freeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	tcp := exec.Command("tcpserver", "-HRl0", host, port, bin(t, "pop3d"), "--root", r.Dir)
	tcp.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := tcp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-tcp.Process.Pid, syscall.SIGKILL); _ = tcp.Wait() })
	waitListen(t, addr)
	const script = `
import poplib, sys, time
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=60)
p.user(sys.argv[3]); p.pass_(sys.argv[4])
p.dele(1); p.dele(2)
print("deleted", flush=True)
time.sleep(60)
`
	cmd := exec.Command("python3", "-c", script, host, port, "demo@example.test", DemoPassword)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 64)
	if n, err := stdout.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "deleted") {
		t.Fatalf("client: %q %v", buf[:n], err)
	}
	// The lock names the pop3d process serving the session.
	lock := readFile(t, filepath.Join(r.mailbox("demo"), "pop3.lock"))
	pid, err := strconv.Atoi(strings.Fields(lock)[0])
	if err != nil || pid == os.Getpid() {
		t.Fatalf("lock %q", lock)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "pop3d gone", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
	if files := messages(t, r.mailbox("demo")); len(files) != 2 {
		t.Fatalf("a killed pop3d deleted mail: %v", files)
	}
	_, msgs, _ := pop3Poplib(t, addr, "", "quit")
	if len(msgs) != 2 {
		t.Fatalf("next session sees %d messages", len(msgs))
	}
}

// curl's POP3 client: LIST, RETR, and AUTH PLAIN and LOGIN.
func TestPOP3Curl(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(2)
	_, addr := r.pop3Start()
	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "60",
			"--user", "demo@example.test:" + DemoPassword}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := curl("pop3://" + addr + "/"); !regexp.MustCompile(`(?m)^1 \d+\r\n2 \d+\r\n$`).MatchString(out) {
		t.Errorf("LIST: %q", out)
	}
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		out := curl("--login-options", "AUTH="+mech, "pop3://"+addr+"/2")
		want := strings.ReplaceAll(pop3Expected(1), "\n", "\r\n") + "\r\n"
		if out != want {
			t.Errorf("RETR with AUTH=%s:\n got %q\nwant %q", mech, out, want)
		}
	}
	out, err := exec.Command("curl", "-sS", "--max-time", "60", "--user", "demo@example.test:wrong",
		"pop3://"+addr+"/1").CombinedOutput()
	if err == nil {
		t.Errorf("curl with a wrong password succeeded: %s", out)
	}
}

// fetchmail, keeping mail on the server, delivers through our deliver; a
// second run retrieves nothing, because the UIDLs are stable.
func TestPOP3FetchmailKeep(t *testing.T) {
	r := newRoot(t)
	r.addUser("dest@example.test")
	r.pop3Fill(4)
	_, addr := r.pop3Start()
	fetchmailKeep(t, r, addr, "sslproto ''")
}

// fetchmail over TLS: POP3S (--tls) and STLS required by fetchmail.
func TestPOP3FetchmailSSL(t *testing.T) {
	for _, c := range []struct{ name, flag, rc string }{
		{"pop3s", "--tls", "ssl\n  no sslcertck"},
		{"stls", "", "sslproto 'TLS1.2+'\n  no sslcertck"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRoot(t)
			r.addUser("dest@example.test")
			r.pop3Fill(4)
			if _, err := tlsconf.SelfSigned(r.Dir, []string{"mx.example.test", "127.0.0.1"}, time.Hour); err != nil {
				t.Fatal(err)
			}
			var args []string
			if c.flag != "" {
				args = append(args, c.flag)
			}
			_, addr := r.pop3Start(args...)
			out := fetchmailKeep(t, r, addr, c.rc)
			if !regexp.MustCompile(`using protocol TLSv1\.[23]`).MatchString(out) {
				t.Errorf("fetchmail did not retrieve over TLS 1.2+:\n%s", out)
			}
		})
	}
}

// fetchmailKeep runs fetchmail twice against addr with the given extra rc
// lines, keeping mail on the server and delivering through our deliver to
// dest@example.test; it checks that the first run delivers the four
// messages and the second none, and returns the second run's output.
func fetchmailKeep(t *testing.T, r *Root, addr, extra string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	home := t.TempDir()
	rc := filepath.Join(home, "fetchmailrc")
	mda := fmt.Sprintf("%s --root %s -d dest@example.test", bin(t, "deliver"), r.Dir)
	if err := os.WriteFile(rc, []byte(fmt.Sprintf(`set no syslog
poll %s with service %s protocol pop3 uidl
  user "demo@example.test" there with password "%s" is "dest" here
  keep
  %s
  mda "%s"
`, host, port, DemoPassword, extra, mda)), 0600); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		t.Helper()
		cmd := exec.Command("fetchmail", "-f", rc, "-v", "--nodetach")
		cmd.Env = append(os.Environ(), "HOME="+home, "FETCHMAILHOME="+home)
		out, err := cmd.CombinedOutput()
		// fetchmail exits 1 when there was no new mail.
		if err != nil && exitCodeOf(err) != 1 {
			t.Fatalf("fetchmail: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run()
	if got := len(messages(t, r.mailbox("dest"))); got != 4 {
		t.Fatalf("first run delivered %d messages, want 4\n%s", got, first)
	}
	out := run()
	if got := len(messages(t, r.mailbox("dest"))); got != 4 {
		t.Fatalf("second run delivered again: %d messages\n%s", got, out)
	}
	if got := len(messages(t, r.mailbox("demo"))); got != 4 {
		t.Fatalf("keep: %d messages left on the server", got)
	}
	return first
}

func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// getmail6 with delete = false, delivering through deliver -m: two runs
// retrieve each message once.
func TestPOP3GetmailKeep(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(3)
	_, addr := r.pop3Start()
	host, port, _ := strings.Cut(addr, ":")
	gm := t.TempDir()
	dest := filepath.Join(gm, "Maildir")
	if err := maildir.Init(dest); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(gm, "getmailrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf(`[retriever]
type = SimplePOP3Retriever
server = %s
port = %s
username = demo@example.test
password = %s

[destination]
type = MDA_external
path = %s
arguments = ("-m", "%s")
allow_root_commands = true
ignore_stderr = true

[options]
delete = false
read_all = false
verbose = 2
`, host, port, DemoPassword, bin(t, "deliver"), dest)), 0600); err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		out, err := exec.Command("getmail", "--getmaildir", gm, "--rcfile", rc).CombinedOutput()
		if err != nil {
			t.Fatalf("getmail: %v\n%s", err, out)
		}
	}
	run()
	if got := len(messages(t, dest)); got != 3 {
		t.Fatalf("first run: %d messages, want 3", got)
	}
	r.pop3Fill(1)
	run()
	if got := len(messages(t, dest)); got != 4 {
		t.Fatalf("second run: %d messages, want 4 (3 old + 1 new)", got)
	}
}

// Under tcpserver (stdin/stdout mode) the idle timeout works too: a client
// that says nothing is told so and disconnected.
func TestPOP3StdioIdleTimeout(t *testing.T) {
	r := newRoot(t)
	addr := freeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	tcp := exec.Command("tcpserver", "-HRl0", host, port, bin(t, "pop3d"), "--root", r.Dir, "--timeout", "300ms")
	tcp.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := tcp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-tcp.Process.Pid, syscall.SIGKILL); _ = tcp.Wait() })
	waitListen(t, addr)
	const script = `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 60)
s.settimeout(60)
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(repr(data))
`
	out, err := python(t, script, host, port)
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	if !strings.Contains(out, `+OK POP3 server ready\r\n-ERR idle`) {
		t.Fatalf("got %s", out)
	}
}

// pop3IMAPScript runs a POP3 session while an IMAP session (imaplib) has
// INBOX selected and deliver adds a message: IMAP sees the new message at
// once, POP3 keeps its snapshot; after QUIT, IMAP sees the POP3 deletion
// and the retrieved message as \Seen.
const pop3IMAPScript = `
import imaplib, poplib, re, subprocess, sys
host, iport, pport, user, pw, deliver, root = sys.argv[1:8]
i = imaplib.IMAP4(host, int(iport))
i.login(user, pw)
i.select("INBOX")
p = poplib.POP3(host, int(pport), timeout=60)
p.user(user); p.pass_(pw)
p.retr(1)
p.dele(3)
msg = b"From: a@b.test\nSubject: during pop3\n\nnew\n"
subprocess.run([deliver, "--root", root, "-d", user], input=msg, check=True)
i.noop()
print("imap during:", len(i.search(None, "ALL")[1][0].split()))
print("pop3 during:", p.stat()[0])  # 3 in the snapshot, one marked deleted
print(p.quit().decode())
i.noop()
typ, data = i.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for part in data:
    if isinstance(part, tuple):
        subj = re.search(rb"Subject: ([^\r\n]*)", part[1]).group(1).decode()
        print("imap after:", subj, "seen" if b"\\Seen" in part[0] else "unseen")
i.logout()
p = poplib.POP3(host, int(pport), timeout=60)
p.user(user); p.pass_(pw)
print("pop3 next:", p.stat()[0])
p.quit()
`

func TestPOP3WithIMAP(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(3)
	_, paddr := r.pop3Start()
	iaddr := freeAddr(t)
	r.start("imapd", "--listen", iaddr)
	waitListen(t, iaddr)
	host, iport, _ := strings.Cut(iaddr, ":")
	_, pport, _ := strings.Cut(paddr, ":")
	out, err := python(t, pop3IMAPScript, host, iport, pport, "demo@example.test", DemoPassword, bin(t, "deliver"), r.Dir)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	for _, want := range []string{
		"imap during: 4", "pop3 during: 2", "+OK bye, 1 messages deleted",
		"imap after: pop3 0 seen", "imap after: pop3 1 unseen", "imap after: during pop3 unseen",
		"pop3 next: 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "pop3 2") {
		t.Errorf("message deleted by POP3 still seen by IMAP:\n%s", out)
	}
}

// With a certificate in etc/tls, curl upgrades with STLS (--ssl-reqd) and
// speaks implicit TLS to pop3d --tls (pop3s://).
func TestPOP3TLS(t *testing.T) {
	r := newRoot(t)
	r.pop3Fill(1)
	if _, err := tlsconf.SelfSigned(r.Dir, []string{"mx.example.test", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, plain := r.pop3Start()
	_, implicit := r.pop3Start("--tls")
	want := strings.ReplaceAll(pop3Expected(0), "\n", "\r\n") + "\r\n"
	for _, url := range []string{"pop3://" + plain + "/1", "pop3s://" + implicit + "/1"} {
		out, err := exec.Command("curl", "-sS", "--max-time", "60", "-k", "--ssl-reqd",
			"--user", "demo@example.test:"+DemoPassword, url).CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("curl %s: %v\n got %q\nwant %q", url, err, out, want)
		}
	}
	// Without a certificate, --tls refuses to start (exit 75).
	bare := newRoot(t)
	err := exec.Command(bin(t, "pop3d"), "--root", bare.Dir, "--tls", "--listen", freeAddr(t)).Run()
	if exitCodeOf(err) != 75 {
		t.Errorf("pop3d --tls without a certificate: %v, want exit 75", err)
	}
}

// Usage errors exit 64 (sysexits EX_USAGE).
func TestPOP3Usage(t *testing.T) {
	r := newRoot(t)
	for _, args := range [][]string{{"--expire", "soon"}, {"--no-such-flag"}, {"extra-argument"}} {
		err := exec.Command(bin(t, "pop3d"), append([]string{"--root", r.Dir}, args...)...).Run()
		if exitCodeOf(err) != 64 {
			t.Errorf("pop3d %v: %v, want exit 64", args, err)
		}
	}
}
