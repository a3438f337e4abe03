package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sendScript sends COUNT messages on each of SESSIONS parallel SMTP
// sessions with Python's smtplib, each message tagged "Message-ID:
// <s-m@test>", and prints "sent N".
const sendScript = `
import smtplib, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
sessions, count = int(sys.argv[2]), int(sys.argv[3])
errors, sent = [], [0]
lock = threading.Lock()
def run(s):
    try:
        c = smtplib.SMTP(host, int(port), timeout=60)
        c.ehlo("client.test")
        for m in range(count):
            msg = "From: a@b.test\r\nTo: demo@example.test\r\nSubject: load\r\nMessage-ID: <%d-%d@test>\r\n\r\n" % (s, m) + ("x" * 98 + "\r\n") * 10
            c.sendmail("a@b.test", ["demo@example.test"], msg)
            with lock:
                sent[0] += 1
        c.quit()
    except Exception as e:
        with lock:
            errors.append(repr(e))
ts = [threading.Thread(target=run, args=(s,)) for s in range(sessions)]
for t in ts: t.start()
for t in ts: t.join()
print("sent", sent[0])
if errors:
    print("errors:", errors[:5])
    sys.exit(1)
`

// 1,000 messages from 50 parallel SMTP sessions all arrive, each exactly
// once: with smtpd writing the queue and queue run delivering itself (a
// single-user installation), and through the queue inject and deliver
// children (the privilege-separated one).
func TestConcurrentSessions(t *testing.T) {
	for _, mode := range []string{"direct", "process"} {
		t.Run(mode, func(t *testing.T) { concurrentSessions(t, mode) })
	}
}

func concurrentSessions(t *testing.T, mode string) {
	r := newRoot(t)
	r.startQueue("--deliver-mode", mode)
	_, addr := r.startSMTPD("--inject", mode)
	out, err := python(t, sendScript, addr, "50", "20")
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	if !strings.Contains(out, "sent 1000") {
		t.Fatalf("smtplib: %s", out)
	}
	waitFor(t, 120*time.Second, "1000 deliveries", func() bool { return len(messages(t, r.mailbox("demo"))) >= 1000 })
	waitFor(t, 30*time.Second, "empty queue", func() bool { return queueEmpty(t, r) })
	re := regexp.MustCompile(`Message-ID: <(\d+-\d+)@test>`)
	seen := map[string]int{}
	for _, f := range messages(t, r.mailbox("demo")) {
		if m := re.FindStringSubmatch(readFile(t, f)); m != nil {
			seen[m[1]]++
		}
	}
	for s := 0; s < 50; s++ {
		for m := 0; m < 20; m++ {
			if c := seen[fmt.Sprintf("%d-%d", s, m)]; c != 1 {
				t.Errorf("message %d-%d arrived %d times", s, m, c)
			}
		}
	}
}

// diskFullScript sends one message and prints the reply to DATA.
const diskFullScript = `
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
c = smtplib.SMTP(host, int(port), timeout=30)
try:
    c.sendmail("a@b.test", ["demo@example.test"], "Subject: " + sys.argv[2] + "\r\n\r\n" + ("y" * 70 + "\r\n") * 300)
    print("accepted")
except smtplib.SMTPDataError as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPResponseException as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
c.quit()
`

// A full disk: smtpd answers 4xx (never 250, never 5xx), the daemon stays
// up, and once there is room again the next message goes through. The
// queue lives on a 1 MB tmpfs (mounting needs root, which CI has).
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs and must run as root (CI does)")
	}
	r := newRoot(t)
	qdir := filepath.Join(r.Dir, "queue")
	if err := syscall.Mount("tmpfs", qdir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(qdir, syscall.MNT_DETACH) })
	if out, err := exec.Command(bin(t, "mailctl"), "--root", r.Dir, "init", "--hostname", "mx.example.test").CombinedOutput(); err != nil {
		t.Fatalf("mailctl init on the new queue fs: %v %s", err, out)
	}
	filler := filepath.Join(qdir, "filler")
	fill := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=4k")
	_ = fill.Run() // ends with "No space left on device"
	_, addr := r.startSMTPD()
	out, err := python(t, diskFullScript, addr, "full")
	if err != nil {
		t.Fatalf("smtplib: %v %s", err, out)
	}
	if !regexp.MustCompile(`^refused 4\d\d `).MatchString(out) {
		t.Fatalf("with a full disk, DATA got: %q, want a 4xx refusal", out)
	}
	ents, _ := os.ReadDir(filepath.Join(qdir, "incoming"))
	if len(ents) != 0 {
		t.Fatalf("a refused message was queued: %v", ents)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	out, err = python(t, diskFullScript, addr, "room")
	if err != nil || strings.TrimSpace(out) != "accepted" {
		t.Fatalf("after freeing space: %v %q", err, out)
	}
	r.startQueue()
	waitFor(t, 20*time.Second, "delivery", func() bool { return len(messages(t, r.mailbox("demo"))) == 1 })
}
