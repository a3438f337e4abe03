package smtpd

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
	"mailsrv/pkg/tlsconf"
)

// authOptions are Options with an Authenticator (throttle state in the
// root) and a self-signed certificate offered by STARTTLS.
func authOptions(t *testing.T, root string) Options {
	t.Helper()
	if _, err := tlsconf.SelfSigned(root, []string{"mx.example.test"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	store := tlsconf.NewStore(root, "mx.example.test")
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	cfg := config.Open(root)
	th, err := throttle.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Config: cfg, TLS: store.Config(), Auth: &auth.Authenticator{Config: cfg, Throttle: th,
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil))}}
}

// remoteListener makes every accepted connection look as if it came from
// a documentation address (RFC 5737), not loopback.
type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
}

// startRemote is startServer for clients that seem to be on 192.0.2.7.
func startRemote(t *testing.T, opts Options) string {
	t.Helper()
	opts.Injector = &fakeInjector{}
	opts.Log = slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(remoteListener{ln}) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// ehlo says EHLO and returns the extensions offered, one a line.
func (c *client) ehlo() string {
	c.t.Helper()
	c.send("EHLO client.test\r\n")
	var ext []string
	for {
		if err := c.c.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
			c.t.Fatal(err)
		}
		line, err := c.r.ReadString('\n')
		if err != nil || len(line) < 4 {
			c.t.Fatalf("EHLO reply: %q, %v", line, err)
		}
		ext = append(ext, strings.TrimSpace(line[4:]))
		if line[3] == ' ' {
			return strings.Join(ext[1:], "\n") + "\n"
		}
	}
}

// startTLS says STARTTLS and makes the handshake with Go's client.
func (c *client) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", "220 2.0.0")
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
}

func plain(user, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
}

// Away from loopback, PLAIN and LOGIN wait for TLS (RFC 4954 section 4);
// SCRAM-SHA-256 is offered at once (mailsrv-auth(7)).
func TestAuthNeedsTLS(t *testing.T) {
	root := newRoot(t)
	addr := startRemote(t, authOptions(t, root))
	c := dial(t, addr)
	ext := c.ehlo()
	if !strings.Contains(ext, "\nAUTH SCRAM-SHA-256\n") || !strings.Contains(ext, "STARTTLS\n") {
		t.Fatalf("clear-text EHLO: %q", ext)
	}
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "538 5.7.11 ")
	c.cmd("AUTH LOGIN", "538 5.7.11 ")
	c.startTLS()
	ext = c.ehlo()
	if !strings.Contains(ext, "\nAUTH SCRAM-SHA-256 PLAIN LOGIN\n") || strings.Contains(ext, "STARTTLS") {
		t.Fatalf("EHLO over TLS: %q", ext)
	}
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "wrong"), "535 5.7.8 ")
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "235 ")
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "503 ")
	if ext := c.ehlo(); strings.Contains(ext, "AUTH") {
		t.Errorf("AUTH offered after login: %q", ext)
	}
	// Authenticated: relaying is allowed, as the user only.
	c.cmd("MAIL FROM:<bob@elsewhere.test>", "553 5.7.1 ")
	c.cmd("MAIL FROM:<alice@example.test>", "250 ")
	c.cmd("RCPT TO:<someone@elsewhere.test>", "250 ")
}

// --allow-insecure-auth offers PLAIN and LOGIN without TLS.
func TestAuthInsecureAllowed(t *testing.T) {
	opts := authOptions(t, newRoot(t))
	opts.AllowInsecureAuth = true
	c := dial(t, startRemote(t, opts))
	if ext := c.ehlo(); !strings.Contains(ext, "\nAUTH SCRAM-SHA-256 PLAIN LOGIN\n") {
		t.Fatalf("EHLO: %q", ext)
	}
	c.cmd("AUTH LOGIN", "334 ")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("alice@example.test")), "334 ")
	c.cmd(base64.StdEncoding.EncodeToString([]byte("secret-password")), "235 ")
}

func TestAuthReplies(t *testing.T) {
	root := newRoot(t)
	addr, _ := startServer(t, authOptions(t, root))
	c := dial(t, addr)
	if ext := c.ehlo(); !strings.Contains(ext, "\nAUTH SCRAM-SHA-256 PLAIN LOGIN\n") {
		t.Fatalf("loopback EHLO: %q", ext)
	}
	c.cmd("AUTH CRAM-MD5", "504 5.5.4 ")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("no nul at all")), "501 5.5.2 ")
	c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("bob@example.test\x00alice@example.test\x00secret-password")), "535 5.7.8 ")
	c.cmd("AUTH LOGIN", "334 ")
	c.cmd("*", "501 ")
	c.cmd("AUTH SCRAM-SHA-256", "334 ")
	c.cmd("*", "501 ")
	// RFC 4954 section 4: not during a transaction.
	c.cmd("MAIL FROM:<x@elsewhere.test>", "250 ")
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "503 5.5.1 ")
	c.cmd("RSET", "250 ")
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "235 ")

	// Without an Authenticator there is no AUTH.
	c = dial(t, func() string { a, _ := startServer(t, Options{}); return a }())
	if ext := c.ehlo(); strings.Contains(ext, "AUTH") {
		t.Fatalf("AUTH offered without an Authenticator: %q", ext)
	}
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "504 5.5.4 ")
}

// A lockout answers 454 4.7.0 to the right password as to a wrong one.
func TestAuthThrottled(t *testing.T) {
	root := newRoot(t)
	if err := writeFile(root, "etc/throttle", "ip.free 0\nip.delay 1ms\nip.max-delay 1ms\nip.lock-after 2\nip.lockout 1h\n"); err != nil {
		t.Fatal(err)
	}
	addr, _ := startServer(t, authOptions(t, root))
	c := dial(t, addr)
	c.ehlo()
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "wrong1"), "535 5.7.8 ")
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "wrong2"), "535 5.7.8 ")
	wrong := c.cmd("AUTH PLAIN "+plain("alice@example.test", "wrong3"), "454 4.7.0 ")
	right := c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "454 4.7.0 ")
	if wrong != right {
		t.Errorf("lockout: wrong password %q, right password %q", wrong, right)
	}
}

// Submission: MAIL needs AUTH; the sender and From must be the user's.
func TestSubmissionDialog(t *testing.T) {
	opts := authOptions(t, newRoot(t))
	opts.Submission = true
	inj := &fakeInjector{}
	opts.Injector = inj
	addr, _ := startServer(t, opts)
	c := dial(t, addr)
	c.ehlo()
	c.cmd("MAIL FROM:<alice@example.test>", "530 5.7.0 ")
	c.cmd("AUTH PLAIN "+plain("alice@example.test", "secret-password"), "235 ")
	c.cmd("MAIL FROM:<bob@elsewhere.test>", "553 5.7.1 ")
	c.cmd("MAIL FROM:<postmaster@example.test>", "250 ")
	c.cmd("RCPT TO:<someone@elsewhere.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("Subject: no from\r\n\r\nbody\r\n.", "554 5.6.0 ")
	c.cmd("MAIL FROM:<alice@example.test>", "250 ")
	c.cmd("RCPT TO:<someone@elsewhere.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("From: bob@elsewhere.test\r\n\r\nbody\r\nFrom: alice@example.test\r\n.", "554 5.7.1 ")
	c.cmd("MAIL FROM:<alice@example.test>", "250 ")
	c.cmd("RCPT TO:<someone@elsewhere.test>", "250 ")
	c.cmd("DATA", "354 ")
	c.cmd("Subject: ok\r\nfrom: Alice\r\n <ALICE+x@Example.Test>\r\n\r\nbody\r\n.", "250 ")
	q := inj.queued()
	if len(q) != 1 {
		t.Fatalf("%d queued, want 1", len(q))
	}
	if !strings.HasPrefix(q[0].msg, "Received: by mx.example.test (mailsrv) with ESMTPA id ") ||
		strings.Contains(q[0].msg, "127.0.0.1") || q[0].env.Auth != "alice@example.test" {
		t.Errorf("queued %q, auth %q", q[0].msg, q[0].env.Auth)
	}
}

func TestMaySendAs(t *testing.T) {
	root := newRoot(t)
	if err := writeFile(root, config.FileUsers, "alice@example.test:"+testHash()+"\nbob@example.test:"+testHash()+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(root, config.FileAliases, "postmaster@example.test: alice@example.test\n"+
		"team@example.test: bob@example.test, alice@example.test\nbobs@example.test: bob@example.test\n"+
		"out@example.test: friend@elsewhere.test\n@catchall.test: alice@example.test\n"); err != nil {
		t.Fatal(err)
	}
	srv := &Server{opts: Options{Config: config.Open(root), Log: slog.Default()}}
	for _, tt := range []struct {
		sendAs string
		from   string
		want   bool
	}{
		{"", "alice@example.test", true},
		{"", "Alice@EXAMPLE.test", true},
		{"", "alice+lists@example.test", true},
		{"", "postmaster@example.test", true},
		{"", "team@example.test", true},
		{"", "anything@catchall.test", true},
		{"", "bob@example.test", false},
		{"", "bobs@example.test", false},
		{"", "out@example.test", false},
		{"", "nobody@example.test", false},
		{"", "alice@elsewhere.test", false},
		{"boss@elsewhere.test", "boss@elsewhere.test", true},
		{"boss@elsewhere.test", "boss2@elsewhere.test", false},
		{"x@y.test, @Elsewhere.Test", "anyone@elsewhere.test", true},
		{"@elsewhere.test", "anyone@sub.elsewhere.test", false},
		{"*", "bob@example.test", true},
		{"not an address,,", "bob@example.test", false},
	} {
		u := config.User{Addr: address.Address{Local: "alice", Domain: "example.test"}}
		if tt.sendAs != "" {
			u.Attrs = map[string]string{sendAsAttr: tt.sendAs}
		}
		s := &Session{srv: srv, user: u, authUser: "alice@example.test", log: slog.Default(), cc: &clientConn{}}
		a, err := address.Parse(tt.from)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.maySendAs(a)
		if err != nil || got != tt.want {
			t.Errorf("send-as %q, from %s: %v, %v; want %v", tt.sendAs, tt.from, got, err, tt.want)
		}
	}
}

func TestHeaderValues(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"From: a@b.test\nSubject: x\n\nFrom: body@b.test\n", []string{"a@b.test"}},
		{"Subject: x\nfrom:  A\n <a@b.test>\n\t, c@d.test\nTo: e\n\n", []string{"A <a@b.test> , c@d.test"}},
		{"From: a@b.test\nFROM: c@d.test\n", []string{"a@b.test", "c@d.test"}},
		{" folded first\nFrom: a@b.test\n\n", []string{"a@b.test"}},
		{"no colon line\nFrom: a@b.test", []string{"a@b.test"}},
		{"From-Not: x\nX-From: y\n\n", nil},
		{"", nil},
	} {
		got, err := headerValues(strings.NewReader(tt.in), "from")
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("headerValues(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// The server refuses to start implicit TLS without a certificate, and
// submission without an Authenticator.
func TestOptionsNeed(t *testing.T) {
	root := newRoot(t)
	for _, o := range []Options{{ImplicitTLS: true}, {Submission: true}} {
		o.Config, o.Injector = config.Open(root), &fakeInjector{}
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}
