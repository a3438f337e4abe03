package pop3

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// stlsScript: before STLS a password is refused (the peer looks remote);
// after it, CAPA offers USER and no STLS, and the login works.
const stlsScript = `
import poplib, ssl, sys
host, port, user, pw = sys.argv[1:5]
p = poplib.POP3(host, int(port), timeout=30)
caps = p.capa()
assert "STLS" in caps and "USER" not in caps, caps
try:
    p.user(user)
    raise SystemExit("USER accepted in plain text")
except poplib.error_proto as e:
    assert b"[AUTH]" in e.args[0], e
p.stls(context=ssl._create_unverified_context())
caps = p.capa()
assert "STLS" not in caps and "USER" in caps and "SASL" in caps, caps
p.user(user)
p.pass_(pw)
print("stat", p.stat())
print(p.quit().decode())
`

func TestSTLS(t *testing.T) {
	e := newEnv(t)
	e.deliver("Subject: tls\n\nx\n")
	e.srv.TLSConfig = selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			e.srv.Serve(ctx, fakeRemote{c})
		}
	}()
	out := e.python(stlsScript)
	<-done
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "stat (1, ") || !strings.Contains(out, "+OK") {
		t.Fatalf("poplib: %s", out)
	}
}

// STLS pipelined with a command after it is refused: that command would
// cross into the TLS session unprotected (RFC 2595 section 4 and the
// STARTTLS command injection flaw).
func TestSTLSInjection(t *testing.T) {
	e := newEnv(t)
	e.srv.TLSConfig = selfSigned(t)
	e.start()
	c := e.dial()
	c.send("STLS\r\nUSER " + testUser + "\r\n")
	c.expect("-ERR")
	c.closed()
}
