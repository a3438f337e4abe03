package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// imaplibIdle logs in twice with Python's imaplib: the first connection
// sends a raw IDLE (imaplib has no IDLE before Python 3.14) and reads what
// comes while `deliver` delivers a message and the second connection sets
// a flag and expunges. It prints the untagged responses seen during IDLE.
const imaplibIdle = `
import imaplib, subprocess, sys
host, port, user, pw, deliver, root = sys.argv[1:7]
a = imaplib.IMAP4(host, int(port)); a.sock.settimeout(30)
b = imaplib.IMAP4(host, int(port)); b.sock.settimeout(30)
a.login(user, pw); b.login(user, pw)
a.select("INBOX"); b.select("INBOX")
tag = a._new_tag()
a.send(tag + b" IDLE\r\n")
assert a.readline().startswith(b"+"), "no continuation"
def until(word):
    while True:
        line = a.readline().decode().strip()
        print(line)
        if line.endswith(word):
            return
msg = b"From: x@example.org\r\nSubject: idle\r\n\r\nhello\r\n"
subprocess.run([deliver, "--root", root, "-d", user, "-f", "x@example.org"], input=msg, check=True, capture_output=True)
until("EXISTS")
b.noop()
b.store("1", "+FLAGS", "(\\Flagged)")
until(")")
b.store("1", "+FLAGS", "(\\Deleted)"); b.expunge()
until("EXPUNGE")
a.send(b"DONE\r\n")
while True:
    line = a.readline().decode().strip()
    if line.startswith(tag.decode()):
        print(line); break
a.logout(); b.logout()
`

// A delivery by deliver, another session's flag change and expunge reach
// imaplib in IDLE. With polls once an hour, only inotify can tell imapd;
// with --no-inotify, polling does.
func TestIMAPDIdle(t *testing.T) {
	for name, args := range map[string][]string{
		"inotify": {"--poll", "1h", "--watch-poll", "1h"},
		"polling": {"--no-inotify", "--poll", "100ms", "--watch-poll", "1h"},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRoot(t)
			_, addr := r.startIMAPD(args...)
			host, port, _ := strings.Cut(addr, ":")
			out, err := python(t, imaplibIdle, host, port, "demo@example.test", DemoPassword, bin(t, "deliver"), r.Dir)
			if err != nil {
				t.Fatalf("imaplib: %v\n%s", err, out)
			}
			// The \Deleted flag may be seen, or the expunge come first.
			want := regexp.MustCompile(`^\* 1 EXISTS\n\* 1 RECENT\n\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\)\)\n` +
				`(\* 1 FETCH \(FLAGS \(\\Flagged \\Deleted \\Recent\)\)\n)?\* 1 EXPUNGE\n[A-Z]+\d+ OK IDLE completed\n$`)
			if !want.MatchString(out) {
				t.Errorf("during IDLE:\n%s\nwant\n%s", out, want)
			}
		})
	}
}

// imaplibIdlePop3 idles with imaplib while Python's poplib deletes the
// first message; it prints what the IDLE heard.
const imaplibIdlePop3 = `
import imaplib, poplib, sys
host, iport, pport, user, pw = sys.argv[1:6]
a = imaplib.IMAP4(host, int(iport)); a.sock.settimeout(30)
a.login(user, pw)
a.select("INBOX", readonly=True)
tag = a._new_tag()
a.send(tag + b" IDLE\r\n")
assert a.readline().startswith(b"+"), "no continuation"
p = poplib.POP3(host, int(pport), timeout=30)
p.user(user); p.pass_(pw)
p.dele(1)
p.quit()
print(a.readline().decode().strip())
a.send(b"DONE\r\n")
print(a.readline().decode().strip())
a.logout()
`

// A message deleted by pop3d reaches imaplib in IDLE as EXPUNGE, by
// inotify (polls once an hour).
func TestIMAPDIdlePop3Delete(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "reply.eml"))
	_, iaddr := r.startIMAPD("--poll", "1h", "--watch-poll", "1h")
	_, paddr := r.pop3Start()
	host, iport, _ := strings.Cut(iaddr, ":")
	_, pport, _ := strings.Cut(paddr, ":")
	out, err := python(t, imaplibIdlePop3, host, iport, pport, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("imaplib/poplib: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^\* 1 EXPUNGE\n[A-Z]+\d+ OK IDLE completed\n$`).MatchString(out) {
		t.Errorf("during IDLE:\n%s", out)
	}
}
