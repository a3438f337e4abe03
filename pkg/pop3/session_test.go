package pop3

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDialog walks the commands of RFC 1939 and checks each reply.
func TestDialog(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: one\n\n.dot\nbody\n")
	e.deliver("Subject: two\r\n\r\nsecond\r\n")
	e.start()
	c := e.dial()
	c.cmd("STAT", "-ERR")
	caps := strings.Join(append([]string{c.cmd("CAPA", "+OK")}, c.multi()...), "\n")
	for _, want := range []string{"USER", "SASL PLAIN LOGIN", "UIDL", "TOP", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE", "IMPLEMENTATION"} {
		if want == "EXPIRE" {
			if strings.Contains(caps, want) {
				t.Errorf("EXPIRE advertised without being set")
			}
			continue
		}
		if !strings.Contains(caps, want) {
			t.Errorf("CAPA lacks %s:\n%s", want, caps)
		}
	}
	c.cmd("PASS x", "-ERR")
	c.login()
	c.cmd("STAT", "+OK 2 "+itoa(len("Subject: one\r\n\r\n.dot\r\nbody\r\n")+len("Subject: two\r\n\r\nsecond\r\n")))
	c.cmd("LIST", "+OK")
	if l := c.multi(); len(l) != 2 || !strings.HasPrefix(l[0], "1 ") || !strings.HasPrefix(l[1], "2 ") {
		t.Errorf("LIST: %q", l)
	}
	c.cmd("LIST 2", "+OK 2 "+itoa(len("Subject: two\r\n\r\nsecond\r\n")))
	c.cmd("LIST 3", "-ERR")
	c.cmd("LIST 0", "-ERR")
	c.cmd("UIDL", "+OK")
	uidl := c.multi()
	c.cmd("UIDL 1", "+OK "+uidl[0])
	c.cmd("RETR 1", "+OK")
	if got := strings.Join(c.multi(), "\n"); got != "Subject: one\n\n.dot\nbody" {
		t.Errorf("RETR 1: %q", got)
	}
	c.cmd("TOP 2 0", "+OK")
	if got := strings.Join(c.multi(), "\n"); got != "Subject: two\n" {
		t.Errorf("TOP 2 0: %q", got)
	}
	c.cmd("TOP 2", "-ERR")
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 1", "-ERR")
	c.cmd("RETR 1", "-ERR")
	c.cmd("STAT", "+OK 1 ")
	c.cmd("RSET", "+OK")
	c.cmd("STAT", "+OK 2 ")
	c.cmd("DELE 2", "+OK")
	c.cmd("NOOP", "+OK")
	c.cmd("USER x", "-ERR")
	c.cmd("QUIT", "+OK")
	c.closed()
	cur, nw := e.files()
	if len(cur) != 1 || len(nw) != 0 {
		t.Fatalf("after QUIT: cur=%v new=%v", cur, nw)
	}
	// Message 1 was retrieved and kept: it is \Seen for IMAP now.
	if !strings.HasSuffix(cur[0], ":2,S") || UIDL(cur[0]) != uidl[0][2:] {
		t.Errorf("kept message: %q (uidl %q)", cur[0], uidl[0])
	}
	if !strings.Contains(e.logs.String(), "session end") || strings.Contains(e.logs.String(), testPass) {
		t.Errorf("log: %s", e.logs.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestDroppedConnection: DELE without QUIT deletes nothing, and the lock is
// released so the next login works.
func TestDroppedConnection(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: keep me\n\nx\n")
	e.start()
	c := e.dial()
	c.login()
	c.cmd("DELE 1", "+OK")
	if err := c.c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := e.dialRetry()
	c2.cmd("STAT", "+OK 1 ")
	c2.cmd("QUIT", "+OK")
	if cur, _ := e.files(); len(cur) != 1 {
		t.Fatalf("message lost: %v", cur)
	}
}

// dialRetry logs in, retrying while the previous session's lock is still
// being released by its goroutine (a hang guard of 30 s, not a timing
// assertion).
func (e *testEnv) dialRetry() *client {
	e.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		c := e.dial()
		c.cmd("USER "+testUser, "+OK")
		c.send("PASS " + testPass + "\r\n")
		l := c.line()
		if strings.HasPrefix(l, "+OK") {
			return c
		}
		if !strings.Contains(l, "[IN-USE]") {
			e.t.Fatalf("login: %q", l)
		}
		_ = c.c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("mailbox still locked")
	return nil
}

func TestInUse(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: x\n\nx\n")
	e.start()
	c1 := e.dial()
	c1.login()
	c2 := e.dial()
	c2.cmd("USER "+testUser, "+OK")
	c2.cmd("PASS "+testPass, "-ERR [IN-USE]")
	// Another user is not affected.
	c3 := e.dial()
	c3.cmd("USER bob@example.org", "+OK")
	c3.cmd("PASS bobpw", "+OK")
	c1.cmd("QUIT", "+OK")
	c1.closed()
	c2.cmd("USER "+testUser, "+OK")
	c2.cmd("PASS "+testPass, "+OK maildrop locked and ready, 1 messages")
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t)
	e.start()
	c := e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH]")
	c.cmd("USER nobody@example.org", "+OK")
	c.cmd("PASS wrong", "-ERR [AUTH]")
	c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00nope"), "-ERR [AUTH]")
	c.closed()
	if strings.Contains(e.logs.String(), "nope") || strings.Contains(e.logs.String(), "wrong") {
		t.Errorf("password in log")
	}
}

func TestBareLocalPart(t *testing.T) {
	e := newEnv(t)
	e.start()
	c := e.dial()
	c.cmd("USER alice", "+OK")
	c.cmd("PASS "+testPass, "+OK")
	c.cmd("QUIT", "+OK")
	// With two local domains a bare name is ambiguous.
	writeFile(t, e.cfg.Path("etc/domains"), "example.org\nexample.net\n")
	c = e.dial()
	c.cmd("USER alice", "+OK")
	c.cmd("PASS "+testPass, "-ERR [AUTH]")
}

func TestLimits(t *testing.T) {
	e := newEnv(t)
	e.start()
	t.Run("long line", func(t *testing.T) {
		c := e.dial()
		c.cmd("NOOP "+strings.Repeat("x", MaxCommandLine), "-ERR line too long")
		c.cmd("NOOP "+strings.Repeat("x", 5*MaxAuthLine), "-ERR line too long")
		c.cmd("CAPA", "+OK")
		c.multi()
		// AUTH may be longer than other commands (RFC 5034).
		c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00"+strings.Repeat("p", 1000)), "-ERR [AUTH]")
	})
	t.Run("bad commands", func(t *testing.T) {
		c := e.dial()
		for range MaxBadCommands - 1 {
			c.cmd("BOGUS", "-ERR")
		}
		c.cmd("CAPA", "+OK") // a good command resets the count
		c.multi()
		for range MaxBadCommands - 1 {
			c.cmd("RETR 1", "-ERR") // not allowed before login
		}
		c.cmd("\x01", "-ERR")
		c.closed()
	})
	t.Run("idle", func(t *testing.T) {
		e2 := newEnv(t)
		e2.srv.IdleTimeout = 50 * time.Millisecond
		e2.start()
		c := e2.dial()
		c.expect("-ERR idle")
		c.closed()
	})
}

func TestPipelining(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.deliver("Subject: p\n\nline\n")
	}
	e.start()
	c := e.dial()
	c.send("USER " + testUser + "\r\nPASS " + testPass + "\r\nSTAT\r\nRETR 1\r\nRETR 2\r\nUIDL\r\nDELE 3\r\nQUIT\r\n")
	c.expect("+OK")
	c.expect("+OK")
	c.expect("+OK 3 ")
	for range 2 {
		c.expect("+OK")
		if l := c.multi(); len(l) != 3 {
			t.Fatalf("RETR: %q", l)
		}
	}
	c.expect("+OK")
	if l := c.multi(); len(l) != 3 {
		t.Fatalf("UIDL: %q", l)
	}
	c.expect("+OK")
	c.expect("+OK")
	c.closed()
	if cur, _ := e.files(); len(cur) != 2 {
		t.Fatalf("cur = %v", cur)
	}
}

// TestSnapshotIsolation: mail delivered during a session shows up in the
// next one, not in this one, and message numbers stay fixed.
func TestSnapshotIsolation(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: 1\n\nx\n")
	e.start()
	c := e.dial()
	c.login()
	e.deliver("Subject: 2\n\nx\n")
	c.cmd("STAT", "+OK 1 ")
	c.cmd("DELE 1", "+OK")
	c.cmd("QUIT", "+OK")
	c = e.dialRetry()
	c.cmd("STAT", "+OK 1 ")
	c.cmd("TOP 1 0", "+OK")
	if l := c.multi(); l[0] != "Subject: 2" {
		t.Errorf("got %q", l)
	}
}

// TestExpungedMeanwhile: a message removed by imapd after the snapshot
// gives -ERR on RETR, and QUIT still succeeds.
func TestExpungedMeanwhile(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: 1\n\nx\n")
	e.deliver("Subject: 2\n\nx\n")
	e.start()
	c := e.dial()
	c.login()
	cur, _ := e.files()
	for _, n := range cur {
		if err := os.Remove(filepath.Join(e.mailbox(), "cur", n)); err != nil {
			t.Fatal(err)
		}
	}
	c.cmd("RETR 1", "-ERR")
	c.cmd("DELE 2", "+OK")
	c.cmd("QUIT", "+OK")
}

func TestLoginDelay(t *testing.T) {
	e := newEnv(t)
	e.srv.LoginDelay = time.Hour
	e.start()
	c := e.dial()
	c.cmd("CAPA", "+OK")
	if caps := strings.Join(c.multi(), "\n"); !strings.Contains(caps, "LOGIN-DELAY 3600") {
		t.Errorf("CAPA: %s", caps)
	}
	c.login()
	c.cmd("QUIT", "+OK")
	c = e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "-ERR [LOGIN-DELAY]")
}

func TestExpireCapability(t *testing.T) {
	e := newEnv(t)
	e.srv.Expire = "NEVER"
	e.start()
	c := e.dial()
	c.cmd("CAPA", "+OK")
	if caps := strings.Join(c.multi(), "\n"); !strings.Contains(caps, "EXPIRE NEVER") {
		t.Errorf("CAPA: %s", caps)
	}
}

// fakeRemote makes a connection look like it comes from 192.0.2.1.
type fakeRemote struct{ net.Conn }

func (fakeRemote) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234} }

// TestInsecureAuth: no password over plain text from a non-loopback peer,
// unless the administrator allows it.
func TestInsecureAuth(t *testing.T) {
	for _, allow := range []bool{false, true} {
		e := newEnv(t)
		e.srv.AllowInsecureAuth = allow
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.addr = ln.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			s, err := ln.Accept()
			if err == nil {
				e.srv.Serve(ctx, fakeRemote{s})
			}
		}()
		c := e.dial()
		c.cmd("CAPA", "+OK")
		caps := strings.Join(c.multi(), "\n")
		if allow {
			c.login()
		} else {
			if strings.Contains(caps, "USER") || strings.Contains(caps, "PLAIN") || strings.Contains(caps, "LOGIN") {
				t.Errorf("CAPA offers plain-text login on plain text: %s", caps)
			}
			c.cmd("USER "+testUser, "-ERR [AUTH]")
			c.cmd("AUTH PLAIN "+b64("\x00"+testUser+"\x00"+testPass), "-ERR [AUTH]")
		}
		c.cmd("QUIT", "+OK")
		cancel()
		_ = ln.Close()
	}
}

// TestSASLDialogs: AUTH alone lists mechanisms (Outlook), PLAIN and LOGIN
// with challenges, "*" cancels, junk is an [AUTH] failure.
func TestSASLDialogs(t *testing.T) {
	e := newEnv(t)
	e.start()
	c := e.dial()
	c.cmd("AUTH", "+OK")
	if l := c.multi(); strings.Join(l, " ") != "PLAIN LOGIN" {
		t.Errorf("AUTH: %q", l)
	}
	c.cmd("AUTH CRAM-MD5", "-ERR")
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd("*", "-ERR authentication aborted")
	c.cmd("AUTH LOGIN", "+ "+b64("Username:"))
	c.cmd(b64(testUser), "+ "+b64("Password:"))
	c.cmd("!!notbase64", "-ERR malformed")
	c.cmd("AUTH LOGIN "+b64(testUser), "+ "+b64("Password:"))
	c.cmd(b64(testPass), "+OK")
	c.cmd("QUIT", "+OK")

	c = e.dial()
	c.cmd("AUTH PLAIN", "+ ")
	c.cmd(b64("\x00"+testUser+"\x00"+testPass), "+OK")
	c.cmd("AUTH PLAIN", "-ERR") // not in TRANSACTION
	c.cmd("TOP 1 x", "-ERR")
	c.cmd("QUIT", "+OK")
}

// When the server stops, sessions end without deleting anything.
func TestShutdown(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: x\n\nx\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s, err := ln.Accept(); err == nil {
			e.srv.Serve(ctx, s)
		}
	}()
	c := e.dial()
	c.login()
	c.cmd("DELE 1", "+OK")
	cancel()
	c.expect("-ERR [SYS/TEMP] server shutting down")
	c.closed()
	<-done
	if cur, _ := e.files(); len(cur) != 1 {
		t.Fatalf("shutdown deleted mail: %v", cur)
	}
	if _, err := os.Stat(filepath.Join(e.mailbox(), LockFile)); !os.IsNotExist(err) {
		t.Errorf("lock left behind: %v", err)
	}
}

// A mailbox that cannot be a directory is a permanent fault: [SYS/PERM].
func TestMailboxBroken(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.cfg.MailDir(), "example.org"), 0700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.cfg.MailDir(), "example.org", "alice"), "not a maildir")
	e.start()
	c := e.dial()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "-ERR [SYS/PERM]")
}

// With the default authenticator (etc/users with hash upgrades), SCRAM is
// offered, a login works, and the user's line gains its SCRAM keys.
func TestDefaultAuthenticator(t *testing.T) {
	e := newEnv(t)
	e.srv.Auth = nil
	e.start()
	c := e.dial()
	c.cmd("CAPA", "+OK")
	if caps := strings.Join(c.multi(), "\n"); !strings.Contains(caps, "SASL SCRAM-SHA-256 PLAIN LOGIN") {
		t.Errorf("CAPA: %s", caps)
	}
	c.login()
	c.cmd("QUIT", "+OK")
	u, ok, err := e.cfg.LookupUser(testUser)
	if err != nil || !ok || len(u.Attrs) == 0 {
		t.Errorf("user after login: %+v %v %v", u, ok, err)
	}
	// SCRAM starts (the exchange itself is pkg/sasl's, tested there).
	c = e.dial()
	c.cmd("AUTH SCRAM-SHA-256 "+b64("n,,n=alice@example.org,r=abcdefghijklmnop"), "+ ")
	c.cmd("*", "-ERR authentication aborted")
}
