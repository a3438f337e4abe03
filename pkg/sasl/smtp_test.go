package sasl

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsrv/pkg/auth"
)

// These tests put the mechanisms behind go-smtp, as smtpd does, and log
// in with clients we did not write: Python's smtplib and swaks. They show
// that a Mechanism is a go-sasl Server and how a session maps errors.

type smtpBackend struct{ a *auth.Authenticator }

func (b smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip := netAddr(c.Conn().RemoteAddr())
	return &smtpSession{srv: &Server{Auth: b.a, Service: "smtpd-test", RemoteIP: ip}}, nil
}

type smtpSession struct{ srv *Server }

func (s *smtpSession) AuthMechanisms() []string { return s.srv.Mechanisms() }

func (s *smtpSession) Auth(mech string) (gosasl.Server, error) {
	m, err := s.srv.Start(mech)
	if err != nil {
		return nil, smtpError(err)
	}
	return smtpMech{m}, nil
}

// smtpMech turns errors into SMTP replies (RFC 4954 section 6).
type smtpMech struct{ m Mechanism }

func (m smtpMech) Next(r []byte) ([]byte, bool, error) {
	ch, done, err := m.m.Next(r)
	if err != nil {
		err = smtpError(err)
	}
	return ch, done, err
}

func smtpError(err error) error {
	e := func(code int, enh smtp.EnhancedCode, msg string) error {
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
	}
	switch Classify(err) {
	case Failed:
		return e(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")
	case Malformed:
		return e(501, smtp.EnhancedCode{5, 5, 2}, "Malformed authentication exchange")
	case Unsupported:
		return e(504, smtp.EnhancedCode{5, 5, 4}, "Unrecognized authentication type")
	case NeedsTLS:
		return e(538, smtp.EnhancedCode{5, 7, 11}, "Encryption required for requested authentication mechanism")
	}
	return e(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure")
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }

func netAddr(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// startSMTP serves go-smtp on a loopback port with our mechanisms.
func startSMTP(t *testing.T, a *auth.Authenticator) string {
	t.Helper()
	srv := smtp.NewServer(smtpBackend{a})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // our Server decides: loopback is allowed
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

const pythonSMTP = `
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo()
print(s.esmtp_features.get("auth", ""))
def try_login(mech, user, pw):
    s.user, s.password = user, pw
    try:
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()), initial_response_ok=(mech == "PLAIN"))
        return code
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
print(try_login("PLAIN", "ann@example.org", "wrong password"))
print(try_login("LOGIN", "ann@example.org", "also wrong"))
print(try_login("LOGIN", "ann@example.org", sys.argv[2]))
s.quit()
`

func TestSMTPPython(t *testing.T) {
	addr := startSMTP(t, newAuth(t))
	out, err := exec.Command("python3", "-c", pythonSMTP, addr, testPassword).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	want := []string{"SCRAM-SHA-256", "PLAIN", "LOGIN", "535", "535", "235"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("smtplib saw %q, want %q", got, want)
	}
}

func TestSMTPSwaks(t *testing.T) {
	addr := startSMTP(t, newAuth(t))
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		mech, pw string
		ok       bool
	}{{"PLAIN", testPassword, true}, {"LOGIN", testPassword, true}, {"PLAIN", "wrong", false}} {
		cmd := exec.Command("swaks", "--server", host, "--port", port, "--auth", tc.mech,
			"--auth-user", "ann@example.org", "--auth-password", tc.pw, "--quit-after", "AUTH", "--timeout", "30")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		text := string(out)
		if tc.ok != strings.Contains(text, "<-  235 ") || !tc.ok && !strings.Contains(text, "<** 535 5.7.8") {
			t.Errorf("swaks --auth %s (ok %v):\n%s", tc.mech, tc.ok, text)
		}
	}
}
