package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inject runs `queue inject -f FROM RCPT...` with msg on stdin.
func (r *Root) inject(t *testing.T, msg, from string, rcpts ...string) (string, error) {
	t.Helper()
	args := append([]string{"--root", r.Dir, "inject", "-f", from, "--"}, rcpts...)
	cmd := exec.Command(bin(t, "queue"), args...)
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestDeliverOneShot(t *testing.T) {
	r := newRoot(t)
	r.write("etc/aliases", "info@example.test: demo@example.test\n")
	run := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin(t, "deliver"), append([]string{"--root", r.Dir}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(err)
	}
	msg := "Subject: one\r\nFrom: a@b.test\r\n\r\nbody\r\n"
	if out, code := run(msg, "-d", "info@example.test", "-f", "a@b.test"); code != 0 {
		t.Fatalf("deliver -d: exit %d: %s", code, out)
	}
	files := messages(t, r.mailbox("demo"))
	if len(files) != 1 {
		t.Fatalf("want 1 message, have %v", files)
	}
	got := readFile(t, files[0])
	want := "Return-Path: <a@b.test>\nDelivered-To: demo@example.test\nSubject: one\nFrom: a@b.test\n\nbody\n"
	if got != want {
		t.Errorf("delivered file:\n%q\nwant\n%q", got, want)
	}
	if !regexp.MustCompile(`,S=\d+,W=\d+$`).MatchString(files[0]) {
		t.Errorf("file name %s lacks size hints", files[0])
	}
	// An address elsewhere is handed to the queue (queue inject, found
	// beside deliver), where it waits for outbound delivery.
	bin(t, "queue")
	if out, code := run(msg, "-d", "nobody@elsewhere.test", "-f", "a@b.test"); code != 0 {
		t.Errorf("forward to a remote address: exit %d: %s", code, out)
	}
	if out, _ := exec.Command(bin(t, "queue"), "--root", r.Dir, "list").CombinedOutput(); !strings.Contains(string(out), "nobody@elsewhere.test") {
		t.Errorf("the forwarded message is not in the queue:\n%s", out)
	}
	if out, code := run(msg, "-d", "nobody@example.test"); code != 67 {
		t.Errorf("unknown user: exit %d, want 67: %s", code, out)
	}
	if out, code := run(got, "-d", "demo@example.test"); code != 65 || !strings.Contains(out, "loop") {
		t.Errorf("looping message: exit %d, want 65: %s", code, out)
	}
	if out, code := run(msg); code != 64 {
		t.Errorf("no destination: exit %d, want 64: %s", code, out)
	}
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0700); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := run(msg, "-m", dir, "-f", "x@y.test"); code != 0 {
		t.Fatalf("deliver -m: exit %d: %s", code, out)
	}
	if n := len(messages(t, dir)); n != 1 {
		t.Errorf("deliver -m: %d messages", n)
	}
	if out, code := run(msg, "-m", filepath.Join(dir, "missing")); code != 75 {
		t.Errorf("deliver -m into a missing Maildir: exit %d, want 75: %s", code, out)
	}
}

func TestQueueRouting(t *testing.T) {
	r := newRoot(t)
	r.addUser("bob@example.test")
	r.write("etc/aliases", "team@example.test: demo@example.test, bob@example.test\n"+
		"@example.test: bob@example.test\n")
	r.startQueue()
	cases := []struct {
		rcpt string
		to   []string // mailboxes that get it
	}{
		{"demo@example.test", []string{"demo"}},
		{"DEMO+news@Example.TEST", []string{"demo"}},
		{"team@example.test", []string{"demo", "bob"}},
		{"whoever@example.test", []string{"bob"}},
	}
	want := map[string]int{}
	for i, c := range cases {
		msg := fmt.Sprintf("Subject: case %d\n\nhello\n", i)
		if out, err := r.inject(t, msg, "sender@example.test", c.rcpt); err != nil {
			t.Fatalf("inject %s: %v %s", c.rcpt, err, out)
		}
		for _, u := range c.to {
			want[u]++
		}
	}
	for u, n := range want {
		waitFor(t, 20*time.Second, u+" mail", func() bool { return len(messages(t, r.mailbox(u))) >= n })
	}
	time.Sleep(200 * time.Millisecond)
	for u, n := range want {
		if got := len(messages(t, r.mailbox(u))); got != n {
			t.Errorf("%s has %d messages, want %d", u, got, n)
		}
	}
	waitFor(t, 10*time.Second, "empty queue", func() bool { return queueEmpty(t, r) })
}

func queueEmpty(t *testing.T, r *Root) bool {
	for _, d := range []string{"incoming", "active", "state"} {
		ents, err := os.ReadDir(filepath.Join(r.Dir, "queue", d))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) > 0 {
			return false
		}
	}
	return true
}

// An alias to a user deleted since: the queue bounces to the sender with a
// DSN, and a bounce that cannot be delivered is not bounced again.
func TestQueueBounce(t *testing.T) {
	r := newRoot(t)
	r.startQueue()
	if out, err := r.inject(t, "Subject: lost\nMessage-ID: <lost@x>\n\nbody\n", "demo@example.test", "gone@example.test"); err != nil {
		t.Fatal(err, out)
	}
	waitFor(t, 20*time.Second, "bounce", func() bool { return len(messages(t, r.mailbox("demo"))) == 1 })
	dsn := readFile(t, messages(t, r.mailbox("demo"))[0])
	for _, want := range []string{"Return-Path: <>", "multipart/report; report-type=delivery-status",
		"Final-Recipient: rfc822; gone@example.test", "Action: failed", "Status: 5.1.1", "Message-ID: <lost@x>"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("bounce lacks %q:\n%s", want, dsn)
		}
	}
	if out, err := r.inject(t, "Subject: bounce\n\nx\n", "", "gone@example.test"); err != nil {
		t.Fatal(err, out)
	}
	waitFor(t, 20*time.Second, "empty queue", func() bool { return queueEmpty(t, r) })
	if n := len(messages(t, r.mailbox("demo"))); n != 1 {
		t.Errorf("a bounce was bounced: demo has %d messages", n)
	}
}

// A delivery that fails for a passing reason (here the mailbox path is in
// the way) is deferred and retried, then succeeds once the fault is gone.
func TestQueueRetry(t *testing.T) {
	r := newRoot(t)
	if err := os.RemoveAll(r.mailbox("demo")); err != nil {
		t.Fatal(err)
	}
	r.write("mail/example.test/demo", "not a directory")
	r.startQueue()
	if out, err := r.inject(t, "Subject: later\n\nx\n", "a@b.test", "demo@example.test"); err != nil {
		t.Fatal(err, out)
	}
	waitFor(t, 20*time.Second, "a deferral in queue list", func() bool {
		out, _ := exec.Command(bin(t, "queue"), "--root", r.Dir, "list").CombinedOutput()
		return strings.Contains(string(out), "pending") && strings.Contains(string(out), "demo@example.test")
	})
	if err := os.Remove(r.mailbox("demo")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "delivery after retry", func() bool { return len(messages(t, r.mailbox("demo"))) == 1 })
	waitFor(t, 10*time.Second, "empty queue", func() bool { return queueEmpty(t, r) })
}

// qmail-queue's interface: the envelope on fd 1.
func TestQueueInjectQmailEnvelope(t *testing.T) {
	r := newRoot(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin(t, "queue"), "--root", r.Dir, "inject")
	cmd.Stdin = strings.NewReader("Subject: q\n\nx\n")
	cmd.Stdout = pr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()
	if _, err := pw.Write([]byte("Fa@b.test\x00Tdemo@example.test\x00\x00")); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err, stderr.String())
	}
	out, _ := exec.Command(bin(t, "queue"), "--root", r.Dir, "list").CombinedOutput()
	if !strings.Contains(string(out), "demo@example.test") || !strings.Contains(string(out), "a@b.test") {
		t.Errorf("queue list after a qmail-style inject:\n%s", out)
	}
}

// A recipient in another domain (here through an alias) is held, since
// outbound delivery does not exist yet, and shown as such by queue list;
// the local recipient of the same message is delivered.
func TestQueueHoldsRemote(t *testing.T) {
	r := newRoot(t)
	r.write("etc/aliases", "fwd@example.test: far@remote.test, demo@example.test\n")
	r.startQueue()
	if out, err := r.inject(t, "Subject: fwd\n\nx\n", "a@b.test", "fwd@example.test"); err != nil {
		t.Fatal(err, out)
	}
	waitFor(t, 20*time.Second, "local delivery", func() bool { return len(messages(t, r.mailbox("demo"))) == 1 })
	waitFor(t, 20*time.Second, "remote held in queue list", func() bool {
		out, _ := exec.Command(bin(t, "queue"), "--root", r.Dir, "list").CombinedOutput()
		return strings.Contains(string(out), "remote") && strings.Contains(string(out), "far@remote.test") &&
			strings.Contains(string(out), "held") && !strings.Contains(string(out), "demo@example.test")
	})
}

// queue delete removes a deferred message for good, without a bounce; the
// scheduler forgets it and goes on delivering the rest.
func TestQueueDelete(t *testing.T) {
	r := newRoot(t)
	r.addUser("bob@example.test")
	if err := os.RemoveAll(r.mailbox("demo")); err != nil {
		t.Fatal(err)
	}
	r.write("mail/example.test/demo", "not a directory") // demo's deliveries are deferred
	r.startQueue()
	id, err := r.inject(t, "Subject: doomed\n\nx\n", "bob@example.test", "demo@example.test")
	if err != nil {
		t.Fatal(err, id)
	}
	queue := func(args ...string) (string, int) {
		out, err := exec.Command(bin(t, "queue"), append([]string{"--root", r.Dir}, args...)...).CombinedOutput()
		return string(out), exitCode(err)
	}
	waitFor(t, 20*time.Second, "a deferral", func() bool {
		out, _ := queue("list")
		return strings.Contains(out, "pending")
	})
	if out, code := queue("delete", id); code != 0 {
		t.Fatalf("queue delete: exit %d %s", code, out)
	}
	if out, code := queue("delete", id); code != 66 {
		t.Errorf("deleting it again: exit %d, want 66: %s", code, out)
	}
	if out, code := queue("delete", "../etc"); code == 0 {
		t.Errorf("an id that escapes the queue was accepted: %s", out)
	}
	if _, err := r.inject(t, "Subject: fine\n\nx\n", "demo@example.test", "bob@example.test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the next delivery", func() bool { return len(messages(t, r.mailbox("bob"))) == 1 })
	waitFor(t, 20*time.Second, "empty queue", func() bool { return queueEmpty(t, r) })
	if n := len(messages(t, r.mailbox("bob"))); n != 1 {
		t.Errorf("bob has %d messages: a bounce was sent for the deleted message", n)
	}
}
