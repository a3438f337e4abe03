package smtpd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsrv/pkg/queue"
)

func TestRecipients(t *testing.T) {
	addr, _ := startServer(t, Options{})
	tests := []struct {
		rcpt, want string
	}{
		{"alice@example.test", "250 "},
		{"ALICE@Example.Test", "250 "},
		{"alice+news@example.test", "250 "},
		{"postmaster@example.test", "250 "},
		{"anything@catchall.test", "250 "},
		{"bob@example.test", "550 5.1.1 "},
		{"bob+alice@example.test", "550 5.1.1 "},
		{"someone@elsewhere.test", "554 5.7.1 "},
		{"not an address", "501 "},
	}
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	for _, tt := range tests {
		c.cmd("RCPT TO:<"+tt.rcpt+">", tt.want)
	}
}

func TestEHLOExtensions(t *testing.T) {
	addr, _ := startServer(t, Options{MaxSize: 12345})
	c := dial(t, addr)
	c.send("EHLO client.test\r\n")
	var ext []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		ext = append(ext, strings.TrimSpace(line[4:]))
		if line[3] == ' ' {
			break
		}
	}
	have := strings.Join(ext, "\n") + "\n"
	for _, want := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 12345", "ENHANCEDSTATUSCODES", "CHUNKING"} {
		if !strings.Contains(have, "\n"+want+"\n") {
			t.Errorf("EHLO lacks %s: %q", want, have)
		}
	}
}

// TestMessage checks what reaches the queue: the envelope, the Received
// header on top, LF line endings, dot-unstuffing.
func TestMessage(t *testing.T) {
	addr, inj := startServer(t, Options{})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice+tag@example.test>", "250 ")
	c.cmd("RCPT TO:<alice+tag@example.test>", "250 ") // same again: one copy
	c.cmd("DATA", "354 ")
	c.send("Subject: hi\r\n\r\n..leading dot\r\nend\r\n.\r\n")
	c.expect("250 2.0.0 OK: queued as Q1")
	c.cmd("QUIT", "221 ")

	q := inj.queued()
	if len(q) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q))
	}
	env := q[0].env
	if env.From.String() != "sender@elsewhere.test" || len(env.To) != 1 ||
		env.To[0].Addr.String() != "alice+tag@example.test" {
		t.Errorf("envelope from %q to %v", env.From.String(), env.To)
	}
	if env.Client != "127.0.0.1" || env.Helo != "client.test" || env.Proto != "ESMTP" {
		t.Errorf("envelope client %q helo %q proto %q", env.Client, env.Helo, env.Proto)
	}
	msg := q[0].msg
	first, rest, _ := strings.Cut(msg, "\n\tby ")
	if first != "Received: from client.test ([127.0.0.1])" {
		t.Errorf("Received starts %q", first)
	}
	if !strings.HasPrefix(rest, "mx.example.test (mailsrv) with ESMTP id ") ||
		!strings.Contains(rest, "\n\tfor <alice+tag@example.test>; ") {
		t.Errorf("Received goes on %q", rest)
	}
	if !strings.HasSuffix(msg, "\nSubject: hi\n\n.leading dot\nend\n") || strings.Contains(msg, "\r") {
		t.Errorf("message %q", msg)
	}
}

// TestSmuggling sends each kind of bare line ending, followed by what a
// smuggler would hide behind it, and checks that nothing is queued, the
// reply is 5xx and the session goes on.
func TestSmuggling(t *testing.T) {
	addr, inj := startServer(t, Options{})
	bodies := map[string]string{
		"bare LF":            "Subject: a\r\n\r\nline\nmore\r\n",
		"LF dot CRLF":        "Subject: a\r\n\r\nx\n.\r\nMAIL FROM:<evil@elsewhere.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\r\nsmuggled\r\n",
		"CRLF dot LF":        "Subject: a\r\n\r\nx\r\n.\nMAIL FROM:<evil@elsewhere.test>\r\n",
		"bare CR":            "Subject: a\r\n\r\nline\rmore\r\n",
		"CR dot CR":          "Subject: a\r\n\r\nx\r.\r\nMAIL FROM:<evil@elsewhere.test>\r\n",
		"bare LF in headers": "Subject: a\nX: y\r\n\r\nbody\r\n",
	}
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	for name, body := range bodies {
		c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
		c.cmd("RCPT TO:<alice@example.test>", "250 ")
		c.cmd("DATA", "354 ")
		c.send(body + ".\r\n")
		if line := c.expect("5"); !strings.HasPrefix(line, "554 5.6.0 ") {
			t.Errorf("%s: reply %q", name, line)
		}
	}
	c.cmd("NOOP", "250 ")
	if n := len(inj.queued()); n != 0 {
		t.Fatalf("%d messages queued after smuggling attempts", n)
	}
	// A good message on the same connection still goes through.
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: ok\r\n\r\nfine\r\n.\r\n")
	c.expect("250 ")
	if n := len(inj.queued()); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
}

func TestLimits(t *testing.T) {
	addr, inj := startServer(t, Options{MaxSize: 1000, MaxRecipients: 3, MaxHops: 5})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")

	c.cmd("MAIL FROM:<sender@elsewhere.test> SIZE=1001", "552 5.3.4 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test> SIZE=1000", "250 ")
	for i := range 3 {
		c.cmd(fmt.Sprintf("RCPT TO:<r%d@catchall.test>", i), "250 ")
	}
	c.cmd("RCPT TO:<r4@catchall.test>", "452 4.5.3 ")
	c.cmd("DATA", "354 ")
	c.send(strings.Repeat("0123456789012345678\r\n", 60) + ".\r\n")
	c.expect("552 5.3.4 ")

	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send(strings.Repeat("Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n", 6) + "\r\nbody\r\n.\r\n")
	c.expect("554 5.4.6 ")

	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send(strings.Repeat("Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\r\n", 5) + "\r\nbody\r\n.\r\n")
	c.expect("250 ")
	if n := len(inj.queued()); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
}

func TestLongLine(t *testing.T) {
	addr, inj := startServer(t, Options{})
	// A command line.
	c := dial(t, addr)
	c.send("EHLO " + strings.Repeat("a", 1200) + "\r\n")
	c.expect("500 ")
	c.expectClosed()

	// A line of message data, over the limit by one: refused, and the
	// session goes on.
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("x", 999) + "\r\n.\r\n")
	c.expect("500 5.5.0 ")
	c.cmd("NOOP", "250 ")

	// Far over the limit, go-smtp stops reading the line, and the
	// connection closes after the reply.
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n.\r\n")
	c.expect("500 5.5.0 ")
	c.expectClosed()

	// A dot-stuffed line of 998 octets is 1001 on the wire: accepted
	// (RFC 5321 section 4.5.3.1.6 does not count the extra dot).
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: dots\r\n\r\n." + strings.Repeat(".", 998) + "\r\n.\r\n")
	c.expect("250 ")

	// At the limit (998 + CRLF) it is fine.
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: long\r\n\r\n" + strings.Repeat("x", 998) + "\r\n.\r\n")
	c.expect("250 ")

	// BDAT has no line reader in go-smtp: ours refuses the line and the
	// session goes on.
	c = dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	chunk := "Subject: long\r\n\r\n" + strings.Repeat("x", 999) + "\r\n"
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	c.expect("500 5.5.0 ")
	c.cmd("NOOP", "250 ")
	if n := len(inj.queued()); n != 2 {
		t.Fatalf("%d messages queued, want 2", n)
	}
}

func TestBDAT(t *testing.T) {
	addr, inj := startServer(t, Options{})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c1, c2 := "Subject: chunks\r\n\r\nfirst ", "part\r\nsecond line\r\n"
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(c1), c1))
	c.expect("250 ")
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(c2), c2))
	c.expect("250 2.0.0 OK: queued")

	// A bare LF in a chunk: refused at LAST, nothing queued.
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	bad := "Subject: x\r\n\r\nx\n.\r\n"
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(bad), bad))
	c.expect("250 ")
	c.send("BDAT 6 LAST\r\nmore\r\n")
	c.expect("554 5.6.0 ")
	c.cmd("NOOP", "250 ")

	q := inj.queued()
	if len(q) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q))
	}
	if !strings.HasSuffix(q[0].msg, "\nSubject: chunks\n\nfirst part\nsecond line\n") {
		t.Errorf("message %q", q[0].msg)
	}
}

// TestQueueFailures checks the replies for each kind of injector failure:
// never 250, and 4xx for anything that may pass.
func TestQueueFailures(t *testing.T) {
	addr, inj := startServer(t, Options{})
	tests := []struct {
		err  error
		want string
	}{
		{&queue.Error{Temporary: true, Msg: "queue busy"}, "451 4.3.0 "},
		{&queue.Error{Temporary: true, Code: 452, Msg: "disk full"}, "452 4.3.1 "},
		{fmt.Errorf("writing: %w", &os.PathError{Op: "write", Path: "q", Err: syscall.ENOSPC}), "452 4.3.1 "},
		{fmt.Errorf("writing: %w", &os.PathError{Op: "open", Path: "q", Err: syscall.EACCES}), "451 4.3.0 "},
		{&queue.Error{Code: 554, Msg: "virus found"}, "554 5.7.1 virus found"},
		{&queue.Error{Msg: "spam"}, "554 5.7.1 spam"},
	}
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	for _, tt := range tests {
		inj.setErr(tt.err)
		c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
		c.cmd("RCPT TO:<alice@example.test>", "250 ")
		c.cmd("DATA", "354 ")
		c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
		c.expect(tt.want)
	}
	inj.setErr(nil)
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect("250 ")
}

// TestConfigChange checks that a new user is known without a restart.
func TestConfigChange(t *testing.T) {
	root := newRoot(t)
	addr, _ := startServer(t, Options{Config: configFor(root)})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<>", "250 ")
	c.cmd("RCPT TO:<carol@example.test>", "550 5.1.1 ")
	path := filepath.Join(root, "etc/aliases")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(old, "carol@example.test: alice@example.test\n"...), 0644); err != nil {
		t.Fatal(err)
	}
	c.cmd("RCPT TO:<carol@example.test>", "250 ")
	// A broken control file is a temporary failure, not a refusal.
	if err := os.WriteFile(path, []byte("this is not an alias line\n"), 0644); err != nil {
		t.Fatal(err)
	}
	c.cmd("RCPT TO:<dave@example.test>", "451 4.3.0 ")
}

func TestIdleTimeout(t *testing.T) {
	addr, _ := startServer(t, Options{Timeout: 500 * time.Millisecond})
	// Silence after the greeting.
	c := dial(t, addr)
	c.expect("421 4.4.2 ")
	c.expectClosed()

	// Silence in the middle of DATA. The commands go in one write, so
	// that no pause on our side can trip the timeout early.
	c = dial(t, addr)
	c.send("EHLO client.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: slow\r\n")
	for _, want := range []string{"250 ", "250 ", "250 ", "354 ", "421 4.4.2 "} {
		c.expect(want)
	}
	c.expectClosed()
}

func TestUTF8Addresses(t *testing.T) {
	addr, _ := startServer(t, Options{})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<josé@elsewhere.test>", "553 5.6.7 ")
	c.cmd("MAIL FROM:<josé@elsewhere.test> SMTPUTF8", "250 ")
	c.cmd("RCPT TO:<jörg@catchall.test>", "250 ")
}

func TestMaxConns(t *testing.T) {
	addr, _ := startServer(t, Options{MaxConns: 1})
	c1 := dial(t, addr)
	c2 := dialRaw(t, addr)
	c2.expect("421 4.7.0 ")
	c2.expectClosed()
	c1.cmd("QUIT", "221 ")
	c1.expectClosed()
	// The slot is freed just after the server closes its side, which may
	// come after our read of EOF: try again a bounded number of times.
	for i := 0; ; i++ {
		c3 := dialRaw(t, addr)
		line, err := c3.reply()
		if err == nil && strings.HasPrefix(line, "220 ") {
			return
		}
		if i == 100 {
			t.Fatalf("still refused after the first connection closed: %q, %v", line, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpoolFull puts the spool for large messages on a 1 MiB tmpfs: a 3 MB
// message gets 452 4.3.1, nothing is queued, and the session goes on.
func TestSpoolFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the tests run as root): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	addr, inj := startServer(t, Options{SpoolDir: dir})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<sender@elsewhere.test>", "250 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("DATA", "354 ")
	line := strings.Repeat("z", 98) + "\r\n"
	c.send("Subject: big\r\n\r\n" + strings.Repeat(line, 30000) + ".\r\n")
	c.expect("452 4.3.1 ")
	c.cmd("NOOP", "250 ")
	if n := len(inj.queued()); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

func TestMaxBadRcpts(t *testing.T) {
	addr, _ := startServer(t, Options{MaxBadRcpts: 3})
	c := dial(t, addr)
	c.cmd("EHLO client.test", "250 ")
	c.cmd("MAIL FROM:<>", "250 ")
	c.cmd("RCPT TO:<nobody1@example.test>", "550 5.1.1 ")
	c.cmd("RCPT TO:<alice@example.test>", "250 ")
	c.cmd("RCPT TO:<someone@elsewhere.test>", "554 5.7.1 ")
	c.cmd("RCPT TO:<nobody2@example.test>", "421 4.7.0 ")
	c.expectClosed()
}

func TestNotARoot(t *testing.T) {
	_, err := New(Options{Config: configFor(filepath.Join(t.TempDir(), "nothing")), Injector: &fakeInjector{}})
	if err == nil || !strings.Contains(err.Error(), "not a mailsrv root") {
		t.Fatalf("New on a missing root: %v", err)
	}
}
