package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/tlsconf"
)

// imapTLSRoot is a root with a self-signed certificate in etc/tls and one
// message in demo's INBOX.
func imapTLSRoot(t *testing.T) *Root {
	t.Helper()
	r := newRoot(t)
	if _, err := tlsconf.SelfSigned(r.Dir, []string{"mx.example.test", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	return r
}

// imapTcpserver runs imapd in stdin/stdout mode under tcpserver, through
// env(1) so that the environment can make the peer look remote
// (TCPREMOTEIP), and returns the address.
func imapTcpserver(t *testing.T, r *Root, env []string, args ...string) string {
	t.Helper()
	return tcpserve(t, env, append([]string{bin(t, "imapd"), "--root", r.Dir}, args...)...)
}

// run runs a command with a hang guard and returns its combined output.
func runCmd(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// imaplibStartTLS: a peer that is not on loopback sees LOGINDISABLED and
// STARTTLS and no plain-text mechanism, and LOGIN is refused with
// [PRIVACYREQUIRED]; after STARTTLS the capabilities change and the login
// works.
const imaplibStartTLS = `
import imaplib, ssl, sys
host, port, user, pw = sys.argv[1:5]
m = imaplib.IMAP4(host, int(port), timeout=15)
caps = m.capabilities
assert "STARTTLS" in caps and "LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps, caps
assert "AUTH=SCRAM-SHA-256" in caps, caps
try:
    m.login(user, pw)
    raise SystemExit("LOGIN accepted in clear")
except imaplib.IMAP4.error as e:
    assert "[PRIVACYREQUIRED]" in str(e), e
m.starttls(ssl_context=ssl._create_unverified_context())
caps = m.capabilities
assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
assert "AUTH=PLAIN" in caps and "AUTH=LOGIN" in caps, caps
print(m.sock.version())
m.login(user, pw)
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", (typ, data)
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print(data[0][1].decode().strip())
m.logout()
print("ok")
`

func TestIMAPDStartTLSImaplib(t *testing.T) {
	r := imapTLSRoot(t)
	addr := imapTcpserver(t, r, []string{"TCPREMOTEIP=192.0.2.7"})
	host, port, _ := strings.Cut(addr, ":")
	out, err := python(t, imaplibStartTLS, host, port, "demo@example.test", DemoPassword)
	if err != nil || !strings.Contains(out, "Subject: simple note") || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("imaplib STARTTLS: %v\n%s", err, out)
	}
	if !strings.Contains(out, "TLSv1.3") {
		t.Errorf("not TLS 1.3: %s", out)
	}
}

// Commands pipelined behind STARTTLS in the clear are thrown away, never
// executed (CVE-2011-0411): b LOGIN, with the right password, is neither
// answered nor run; after the handshake the session is still not
// authenticated.
func TestIMAPDStartTLSInjection(t *testing.T) {
	r := imapTLSRoot(t)
	p, addr := r.startIMAPD("--debug")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if l, err := br.ReadString('\n'); err != nil || !strings.Contains(l, "STARTTLS") {
		t.Fatalf("greeting: %q %v", l, err)
	}
	inject := "a STARTTLS\r\nb LOGIN demo@example.test \"" + DemoPassword + "\"\r\n"
	if _, err := c.Write([]byte(inject)); err != nil { // one write: one segment
		t.Fatal(err)
	}
	l, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "a OK ") {
		t.Fatalf("STARTTLS: %q %v", l, err)
	}
	if br.Buffered() > 0 {
		t.Fatalf("server sent more in the clear after STARTTLS's OK")
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := tc.Write([]byte("c CAPABILITY\r\nd SELECT INBOX\r\ne LOGOUT\r\n")); err != nil {
		t.Fatal(err)
	}
	var got []string
	tr := bufio.NewReader(tc)
	for {
		l, err := tr.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, strings.TrimRight(l, "\r\n"))
	}
	want := []string{"* CAPABILITY ", "c OK CAPABILITY completed", "d BAD SELECT not allowed now",
		"* BYE logging out", "e OK LOGOUT completed"}
	if len(got) != len(want) {
		t.Fatalf("after TLS got %q", got)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("line %d: %q, want %q...", i, got[i], w)
		}
	}
	if strings.Contains(got[0], "STARTTLS") || !strings.Contains(got[0], "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %q", got[0])
	}
	// The log reaches us through a pipe: wait for the line, then look.
	waitFor(t, 10*time.Second, "the discarded bytes in the log", func() bool {
		return strings.Contains(p.Log(), "discarding data pipelined after STARTTLS")
	})
	if strings.Contains(p.Log(), "mech=LOGIN") {
		t.Errorf("the pipelined LOGIN was tried:\n%s", p.Log())
	}
}

// Implicit TLS (--tls, port 993) in both modes: Python's IMAP4_SSL, curl
// imaps://, and openssl s_client, which finds TLS 1.1 refused and 1.2
// served.
func TestIMAPDImplicitTLS(t *testing.T) {
	r := imapTLSRoot(t)
	_, listen := r.startIMAPD("--tls")
	under := imapTcpserver(t, r, nil, "--tls")
	script := `
import imaplib, ssl, sys
host, port, user, pw = sys.argv[1:5]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl._create_unverified_context(), timeout=15)
caps = m.capabilities
assert "STARTTLS" not in caps and "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps, caps
m.login(user, pw)
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", (typ, data)
m.logout()
print("ok")
`
	for name, addr := range map[string]string{"listen": listen, "tcpserver": under} {
		host, port, _ := strings.Cut(addr, ":")
		if out, err := python(t, script, host, port, "demo@example.test", DemoPassword); err != nil || out != "ok\n" {
			t.Errorf("%s: IMAP4_SSL: %v\n%s", name, err, out)
		}
	}
	out, err := runCmd(t, "", "curl", "-sS", "-k", "--max-time", "15", "-u", "demo@example.test:"+DemoPassword,
		"imaps://"+listen+"/INBOX;UID=1")
	if err != nil || !strings.Contains(out, "Subject: simple note") {
		t.Errorf("curl imaps: %v\n%s", err, out)
	}
	// SECLEVEL=0 lets OpenSSL itself offer TLS 1.1: the refusal must be the server's.
	out, err = runCmd(t, "", "openssl", "s_client", "-connect", listen, "-servername", "mx.example.test",
		"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
	if err == nil || !strings.Contains(out, "alert protocol version") {
		t.Errorf("TLS 1.1 not refused by the server: %v\n%s", err, out)
	}
	out, err = runCmd(t, "a LOGOUT\n", "openssl", "s_client", "-connect", listen, "-servername", "mx.example.test",
		"-tls1_2", "-crlf", "-ign_eof")
	if err != nil || !strings.Contains(out, "Protocol  : TLSv1.2") || !strings.Contains(out, "* OK [CAPABILITY") ||
		!strings.Contains(out, "a OK LOGOUT completed") {
		t.Errorf("TLS 1.2: %v\n%s", err, out)
	}
}

// STARTTLS with curl (--ssl-reqd) and openssl s_client -starttls imap.
func TestIMAPDStartTLSCurlOpenSSL(t *testing.T) {
	r := imapTLSRoot(t)
	p, addr := r.startIMAPD()
	out, err := runCmd(t, "", "curl", "-sS", "-k", "--ssl-reqd", "--max-time", "15",
		"-u", "demo@example.test:"+DemoPassword, "imap://"+addr+"/INBOX;UID=1")
	if err != nil || !strings.Contains(out, "Subject: simple note") {
		t.Errorf("curl --ssl-reqd: %v\n%s", err, out)
	}
	loginTLS := regexp.MustCompile(`msg=login .*user=demo@example.test tls=true`)
	waitFor(t, 10*time.Second, "the login over TLS in the log", func() bool {
		return loginTLS.MatchString(p.Log())
	})
	out, err = runCmd(t, "a1 CAPABILITY\na2 LOGOUT\n", "openssl", "s_client", "-starttls", "imap",
		"-connect", addr, "-servername", "mx.example.test", "-crlf", "-ign_eof")
	if err != nil || !strings.Contains(out, "a2 OK LOGOUT completed") {
		t.Fatalf("openssl -starttls imap: %v\n%s", err, out)
	}
	caps := regexp.MustCompile(`(?m)^\* CAPABILITY .*$`).FindAllString(out, -1)
	if len(caps) == 0 {
		t.Fatalf("no CAPABILITY after STARTTLS:\n%s", out)
	}
	last := caps[len(caps)-1]
	if strings.Contains(last, "STARTTLS") || !strings.Contains(last, "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %q", last)
	}
}

// --tls without a certificate: imapd refuses to start, exit 75, in both
// modes.
func TestIMAPDTLSNeedsCertificate(t *testing.T) {
	r := newRoot(t)
	for _, args := range [][]string{{"--tls"}, {"--tls", "--listen", freeAddr(t)}} {
		out, err := runCmd(t, "", bin(t, "imapd"), append([]string{"--root", r.Dir}, args...)...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 75 || !strings.Contains(out, "no certificate") {
			t.Errorf("imapd %v: %v\n%s", args, err, out)
		}
	}
}

// imaplibThrottle logs in with wrong passwords from one address, a new
// connection each time, until locked out; then tries wrong and right
// passwords, and prints each answer.
const imaplibThrottle = `
import imaplib, sys
host, port, user, pw = sys.argv[1:5]
for p in ["wrong1", "wrong2", "wrong3", "wrong4", pw]:
    m = imaplib.IMAP4(host, int(port), timeout=15)
    try:
        m.login(user, p)
        print("logged in")
    except imaplib.IMAP4.error as e:
        print(e)
    m.logout()
`

// The throttle (pkg/throttle, policy in ROOT/etc/throttle) locks the
// client out after three failures: then a wrong and the right password
// get the same NO [UNAVAILABLE].
func TestIMAPDThrottle(t *testing.T) {
	r := newRoot(t)
	r.write("etc/throttle", "ip.free 100\nip.lock-after 3\nip.lockout 10m\naccount.free 100\n")
	p, addr := r.startIMAPD()
	host, port, _ := strings.Cut(addr, ":")
	out, err := python(t, imaplibThrottle, host, port, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("answers: %q", lines)
	}
	for _, l := range lines[:3] {
		if !strings.Contains(l, "[AUTHENTICATIONFAILED]") {
			t.Errorf("before the lockout: %q", l)
		}
	}
	if !strings.Contains(lines[3], "[UNAVAILABLE]") || lines[4] != lines[3] {
		t.Errorf("during the lockout: wrong password %q, right one %q: want the same NO [UNAVAILABLE]", lines[3], lines[4])
	}
	waitFor(t, 10*time.Second, "the throttled attempts in the log", func() bool {
		return strings.Count(p.Log(), "result=throttled") >= 2
	})
	if n := strings.Count(p.Log(), "result=throttled"); n != 2 {
		t.Errorf("%d throttled attempts logged, want 2:\n%s", n, p.Log())
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "run/throttle")); err != nil {
		t.Errorf("no throttle state: %v", err)
	}
}

// scramUser rewrites etc/users so that demo has SCRAM-SHA-256 keys, as
// `mailctl user passwd` or the first password login leave them.
func scramUser(t *testing.T, r *Root) {
	t.Helper()
	hash, attrs, err := auth.SetPassword(DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	line := "demo@example.test:" + hash + ":"
	for k, v := range attrs {
		line += k + "=" + v + " "
	}
	r.write("etc/users", strings.TrimSpace(line)+"\n")
}

// mbsync (isync, Cyrus SASL) logs in with SCRAM-SHA-256, checks the
// server's signature, and copies INBOX; with a wrong password it is told
// NO [AUTHENTICATIONFAILED]. imapd runs as its Tunnel, on stdin/stdout.
func TestIMAPDMbsyncScram(t *testing.T) {
	r := newRoot(t)
	scramUser(t, r)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	imapd := bin(t, "imapd")
	sync := func(password string) (string, string, error) {
		dir := t.TempDir()
		conf := `IMAPAccount test
Tunnel "` + imapd + ` --root ` + r.Dir + `"
User demo@example.test
Pass "` + password + `"
AuthMechs SCRAM-SHA-256
SSLType None

IMAPStore remote
Account test

MaildirStore local
Path ` + dir + `/
Inbox ` + dir + `/INBOX

Channel c
Far :remote:
Near :local:
Patterns INBOX
Create Near
SyncState *
`
		if err := os.WriteFile(filepath.Join(dir, "mbsyncrc"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runCmd(t, "", "mbsync", "-c", filepath.Join(dir, "mbsyncrc"), "c")
		return out, dir, err
	}
	out, dir, err := sync(DemoPassword)
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	got := messages(t, filepath.Join(dir, "INBOX"))
	if len(got) != 1 || !strings.Contains(readFile(t, got[0]), "Subject: simple note") {
		t.Fatalf("mbsync copied %q\n%s", got, out)
	}
	// imapd's log reaches mbsync's stderr through the tunnel.
	if !regexp.MustCompile(`msg=auth .*mech=SCRAM-SHA-256 user=demo@example.test .*result=ok`).MatchString(out) {
		t.Errorf("no SCRAM-SHA-256 login in the log:\n%s", out)
	}
	out, _, err = sync("not the password")
	if err == nil || !strings.Contains(out, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password: %v\n%s", err, out)
	}
}
