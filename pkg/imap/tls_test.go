package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"mailsrv/pkg/config"
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/tlsconf"
)

// remoteConn makes a loopback connection look as if it came from a
// documentation address, so that passwords need TLS.
type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4242} }

// tlsServer serves srv with a certificate from tlsconf (as imapd loads
// it), every peer looking remote. It returns the address.
func tlsServer(t *testing.T, cfg *config.Config, tweak func(*Server)) string {
	t.Helper()
	if _, err := tlsconf.SelfSigned(cfg.Root, []string{"mx.example.test", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ForDaemon(cfg.Root, "mx.example.test", false)
	if err != nil || tc == nil {
		t.Fatalf("tls config: %v", err)
	}
	srv := &Server{Config: cfg, Hostname: "mx.example.test", TLSConfig: tc,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tweak != nil {
		tweak(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); srv.Serve(ctx, remoteConn{c}) }()
		}
	}()
	t.Cleanup(func() { cancel(); _ = ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

var insecureTLS = &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"}

// go-imap v2's client upgrades with STARTTLS, sees the new capabilities,
// and authenticates with SASL LOGIN and PLAIN (with SASL-IR).
func TestGoIMAPStartTLS(t *testing.T) {
	cfg, mbox := testRoot(t)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, cfg, nil)
	for _, mech := range []sasl.Client{
		sasl.NewLoginClient("demo@example.test", testPassword),
		sasl.NewPlainClient("", "demo@example.test", testPassword),
	} {
		c, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: insecureTLS})
		if err != nil {
			t.Fatal(err)
		}
		caps := c.Caps()
		if caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.Cap("AUTH=PLAIN")) ||
			!caps.Has(imap.Cap("AUTH=LOGIN")) || !caps.Has(imap.Cap("AUTH=SCRAM-SHA-256")) {
			t.Errorf("capabilities after STARTTLS: %v", caps)
		}
		if err := c.Authenticate(mech); err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.UIDValidity == 0 {
			t.Fatalf("select: %+v %v", sel, err)
		}
		if err := c.Logout().Wait(); err != nil {
			t.Error(err)
		}
		_ = c.Close()
	}
}

// Before TLS, a remote peer may not send a password: LOGINDISABLED, no
// plain-text mechanism, NO [PRIVACYREQUIRED]; SCRAM-SHA-256 may start.
// After STARTTLS a second STARTTLS is refused, an authorization identity
// of another user is NO [AUTHORIZATIONFAILED], a wrong password NO
// [AUTHENTICATIONFAILED].
func TestStartTLSStates(t *testing.T) {
	cfg, _ := testRoot(t)
	addr := tlsServer(t, cfg, nil)
	cl := dial(t, addr)
	cl.send("1 CAPABILITY\r\n")
	caps := cl.until("1")
	if !strings.Contains(caps, " LOGINDISABLED AUTH=SCRAM-SHA-256 STARTTLS\r\n") || strings.Contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities before TLS: %q", caps)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00demo@example.test\x00" + testPassword))
	for _, c := range []struct{ send, want string }{
		{"2 LOGIN demo@example.test \"" + testPassword + "\"\r\n", "2 NO [PRIVACYREQUIRED] LOGIN refused on an unencrypted connection; use STARTTLS\r\n"},
		{"3 AUTHENTICATE PLAIN " + plain + "\r\n", "3 NO [PRIVACYREQUIRED] AUTHENTICATE refused on an unencrypted connection; use STARTTLS\r\n"},
		{"4 AUTHENTICATE LOGIN\r\n", "4 NO [PRIVACYREQUIRED] AUTHENTICATE refused on an unencrypted connection; use STARTTLS\r\n"},
		{"5 AUTHENTICATE SCRAM-SHA-256\r\n", "+ \r\n"},
		{"*\r\n", "5 BAD AUTHENTICATE cancelled\r\n"},
		{"6 STARTTLS extra\r\n", "6 BAD "},
	} {
		cl.send(c.send)
		if got := cl.line(); !strings.HasPrefix(got, c.want) {
			t.Fatalf("%q: got %q, want %q", c.send, got, c.want)
		}
	}
	cl.send("7 STARTTLS\r\n")
	if got := cl.line(); got != "7 OK begin TLS negotiation now\r\n" {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := tls.Client(cl.c, insecureTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cl.c, cl.br = tc, bufio.NewReader(tc)
	other := base64.StdEncoding.EncodeToString([]byte("root@example.test\x00demo@example.test\x00" + testPassword))
	wrong := base64.StdEncoding.EncodeToString([]byte("\x00demo@example.test\x00wrong"))
	for _, c := range []struct{ send, want string }{
		{"8 STARTTLS\r\n", "8 BAD TLS is already active\r\n"},
		{"9 AUTHENTICATE PLAIN " + other + "\r\n", "9 NO [AUTHORIZATIONFAILED] invalid credentials\r\n"},
		{"10 AUTHENTICATE PLAIN =\r\n", "10 BAD malformed SASL response\r\n"},
		{"11 AUTHENTICATE PLAIN\r\n", "+ \r\n"},
		{wrong + "\r\n", "11 NO [AUTHENTICATIONFAILED] invalid credentials\r\n"},
		{"12 AUTHENTICATE LOGIN ZGVtb0BleGFtcGxlLnRlc3Q=\r\n", "+ UGFzc3dvcmQ6\r\n"}, // "Password:"
		{base64.StdEncoding.EncodeToString([]byte(testPassword)) + "\r\n", "12 OK [CAPABILITY "},
	} {
		cl.send(c.send)
		if got := cl.line(); !strings.HasPrefix(got, c.want) {
			t.Fatalf("%q: got %q, want %q", c.send, got, c.want)
		}
	}
}

// A client that says STARTTLS and then sends garbage instead of a
// ClientHello loses its connection; the server goes on serving.
func TestStartTLSBadHandshake(t *testing.T) {
	cfg, _ := testRoot(t)
	addr := tlsServer(t, cfg, nil)
	cl := dial(t, addr)
	cl.send("1 STARTTLS\r\n")
	cl.line()
	cl.send("2 LOGIN demo@example.test \"" + testPassword + "\"\r\n")
	if err := cl.c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(cl.br)
	if strings.Contains(string(rest), "2 ") {
		t.Fatalf("command after STARTTLS answered in the clear: %q", rest)
	}
	cl = dial(t, addr)
	cl.send("3 NOOP\r\n")
	if got := cl.line(); got != "3 OK NOOP completed\r\n" {
		t.Fatalf("after a failed handshake: %q", got)
	}
}

// With ImplicitTLS every connection starts with the handshake; the
// session knows it is encrypted.
func TestImplicitTLS(t *testing.T) {
	cfg, mbox := testRoot(t)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, cfg, func(s *Server) { s.ImplicitTLS = true })
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: insecureTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if caps := c.Caps(); caps.Has(imap.CapStartTLS) || !caps.Has(imap.Cap("AUTH=PLAIN")) {
		t.Errorf("capabilities: %v", caps)
	}
	if err := c.Login("demo@example.test", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Error(err)
	}
}

// A shutdown ends a connection still waiting for its TLS handshake.
func TestImplicitTLSShutdown(t *testing.T) {
	cfg, _ := testRoot(t)
	if _, err := tlsconf.SelfSigned(cfg.Root, []string{"mx.example.test"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ForDaemon(cfg.Root, "mx.example.test", true)
	if err != nil {
		t.Fatal(err)
	}
	run := testServerWith(t, &Server{Config: cfg, TLSConfig: tc, ImplicitTLS: true})
	c, err := net.Dial("tcp", run.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := c.Write([]byte{0x16}); err != nil { // the first byte of a ClientHello, then silence
		t.Fatal(err)
	}
	run.cancel()
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	// Closed either way: EOF, or a reset when the server closed with our
	// byte still unread. A timeout means it was left open.
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed at shutdown: %v", err)
	}
}
