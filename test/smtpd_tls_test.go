package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/tlsconf"
)

// tlsRoot is smtpdRoot with a self-signed certificate in etc/tls.
func tlsRoot(t *testing.T) *Root {
	t.Helper()
	r := smtpdRoot(t)
	if _, err := tlsconf.SelfSigned(r.Dir, []string{"mx.example.test", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return r
}

// swaks runs swaks with args and returns its transcript; a failing exit
// is not an error here, the transcript says what happened.
func swaks(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("swaks", append([]string{"--timeout", "30"}, args...)...).CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("swaks: %v", err)
	}
	return string(out)
}

// swaks over STARTTLS (port 25 style, authenticated relay) and over
// implicit TLS (465 style, --tls), with AUTH PLAIN and LOGIN.
func TestSMTPDTLSSwaks(t *testing.T) {
	f := useFilter(t)
	r := tlsRoot(t)
	_, plainAddr := r.startSMTPD()
	_, tlsAddr := r.startSMTPD("--tls", "--submission")

	// STARTTLS is offered; AUTH PLAIN after it relays to another domain.
	out := swaks(t, "--server", plainAddr, "--tls", "--auth", "PLAIN", "--auth-user", "demo@example.test",
		"--auth-password", DemoPassword, "--from", "demo@example.test", "--to", "someone@elsewhere.test",
		"--header", "Subject: starttls")
	for _, want := range []string{"<-  250-STARTTLS", "<-  220 2.0.0", "TLS started", "<~  235 ", "<~  250 2.0.0 OK: queued"} {
		if !strings.Contains(out, want) {
			t.Fatalf("swaks --tls: no %q in\n%s", want, out)
		}
	}
	// Implicit TLS: the greeting comes over TLS; AUTH LOGIN.
	out = swaks(t, "--server", tlsAddr, "--tlsc", "--auth", "LOGIN", "--auth-user", "demo@example.test",
		"--auth-password", DemoPassword, "--from", "demo@example.test", "--to", "demo@example.test",
		"--header", "Subject: implicit")
	for _, want := range []string{"TLS started", "<~  220 ", "<~  235 ", "<~  250 2.0.0 OK: queued"} {
		if !strings.Contains(out, want) {
			t.Fatalf("swaks --tlsc: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "STARTTLS") {
		t.Errorf("STARTTLS offered inside implicit TLS:\n%s", out)
	}
	// A wrong password over TLS: 535 5.7.8.
	out = swaks(t, "--server", tlsAddr, "--tlsc", "--auth", "PLAIN", "--auth-user", "demo@example.test",
		"--auth-password", "not the password", "--quit-after", "AUTH")
	if !strings.Contains(out, "<~* 535 5.7.8") {
		t.Fatalf("wrong password: want 535 5.7.8:\n%s", out)
	}
	msgs, args := f.saved()
	if len(msgs) != 2 {
		t.Fatalf("filter got %d messages, want 2", len(msgs))
	}
	if !strings.Contains(msgs[0], "with ESMTPSA") || !strings.Contains(args[0], "someone@elsewhere.test") {
		t.Errorf("relayed message: args %q\n%s", args[0], msgs[0])
	}
	// Submission leaves the client out of the Received header.
	if !strings.Contains(msgs[1], "with ESMTPSA") || strings.Contains(msgs[1], "127.0.0.1") {
		t.Errorf("submitted message's header:\n%s", msgs[1])
	}
}

// pythonTLS sends with Python's smtplib: STARTTLS on one address, then
// implicit TLS (SMTP_SSL) on the other, logging in on both.
const pythonTLS = `
import smtplib, ssl, sys
starttls, implicit, user, pw = sys.argv[1:5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
h, p = starttls.rsplit(":", 1)
s = smtplib.SMTP(h, int(p), timeout=30)
s.ehlo()
print("starttls-offered", s.has_extn("starttls"))
print("starttls", s.starttls(context=ctx)[0])
s.ehlo()
print("tls-version", s.sock.version())
print("login", s.login(user, pw)[0])
s.sendmail(user, [user], "From: " + user + "\r\nSubject: smtplib starttls\r\n\r\nhello\r\n")
s.quit()
h, p = implicit.rsplit(":", 1)
s = smtplib.SMTP_SSL(h, int(p), context=ctx, timeout=30)
s.ehlo()
print("implicit-starttls-offered", s.has_extn("starttls"))
print("login", s.login(user, pw)[0])
s.sendmail(user, [user], "From: " + user + "\r\nSubject: smtplib implicit\r\n\r\nhello\r\n")
s.quit()
print("done")
`

func TestSMTPDTLSPython(t *testing.T) {
	f := useFilter(t)
	r := tlsRoot(t)
	_, plainAddr := r.startSMTPD("--submission")
	_, tlsAddr := r.startSMTPD("--submission", "--tls")
	out, err := python(t, pythonTLS, plainAddr, tlsAddr, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "starttls-offered True\nstarttls 220\ntls-version TLSv1.3\nlogin 235\n" +
		"implicit-starttls-offered False\nlogin 235\ndone\n"
	if out != want {
		t.Fatalf("smtplib:\n%s\nwant:\n%s", out, want)
	}
	if msgs, _ := f.saved(); len(msgs) != 2 {
		t.Fatalf("filter got %d messages, want 2", len(msgs))
	}
}

// curl submits over STARTTLS with --ssl-reqd, and over implicit TLS
// (smtps://).
func TestSMTPDTLSCurl(t *testing.T) {
	f := useFilter(t)
	r := tlsRoot(t)
	_, plainAddr := r.startSMTPD("--submission")
	_, tlsAddr := r.startSMTPD("--submission", "--tls")
	msg := r.Dir + "/curl-message"
	r.write("curl-message", "From: demo@example.test\r\nTo: demo@example.test\r\nSubject: curl\r\n\r\nsent by curl\r\n")
	for _, url := range []string{"smtp://" + plainAddr, "smtps://" + tlsAddr} {
		out, err := exec.Command("curl", "-sS", "--max-time", "30", "--ssl-reqd", "-k", url,
			"--user", "demo@example.test:"+DemoPassword, "--mail-from", "demo@example.test",
			"--mail-rcpt", "demo@example.test", "--upload-file", msg).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
	}
	msgs, _ := f.saved()
	if len(msgs) != 2 || !strings.Contains(msgs[1], "sent by curl") {
		t.Fatalf("filter got %q", msgs)
	}
	// Without a password curl cannot send: submission wants AUTH (530).
	out, err := exec.Command("curl", "-sS", "--max-time", "30", "--ssl-reqd", "-k", "smtp://"+plainAddr,
		"--mail-from", "demo@example.test", "--mail-rcpt", "demo@example.test", "--upload-file", msg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "530") {
		t.Fatalf("curl without AUTH: %v\n%s", err, out)
	}
}

// openssl s_client: TLS 1.2 and 1.3 are accepted, TLS 1.0 and 1.1
// refused by the server (a protocol version alert), over STARTTLS and
// implicit TLS. The client is told to allow the old versions
// (SECLEVEL=0), so that the refusal is the server's.
func TestSMTPDTLSVersions(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (Debian package openssl)")
	}
	r := tlsRoot(t)
	_, plainAddr := r.startSMTPD()
	_, tlsAddr := r.startSMTPD("--tls")
	for _, tc := range []struct {
		addr     string
		starttls bool
	}{{plainAddr, true}, {tlsAddr, false}} {
		for _, v := range []string{"-tls1", "-tls1_1", "-tls1_2", "-tls1_3"} {
			args := []string{"s_client", "-connect", tc.addr, v, "-cipher", "DEFAULT@SECLEVEL=0"}
			if v == "-tls1_3" {
				args = args[:len(args)-2]
			}
			if tc.starttls {
				args = append(args, "-starttls", "smtp")
			}
			cmd := exec.Command("openssl", args...)
			cmd.Stdin = strings.NewReader("QUIT\r\n")
			out, err := cmd.CombinedOutput()
			text := string(out)
			ok := err == nil && strings.Contains(text, "Cipher is") && !strings.Contains(text, "Cipher is (NONE)")
			want := v == "-tls1_2" || v == "-tls1_3"
			if ok != want {
				t.Errorf("openssl %s (STARTTLS %v): handshake ok %v, want %v\n%s", v, tc.starttls, ok, want, text)
			}
			if !want && !strings.Contains(text, "alert protocol version") {
				t.Errorf("openssl %s (STARTTLS %v): no protocol version alert from the server\n%s", v, tc.starttls, text)
			}
		}
	}
}

// pythonPipelineTLS sends STARTTLS and a command in one write, as a man in
// the middle would inject it (CVE-2011-0411), then starts TLS and says
// EHLO: the first reply over TLS must be EHLO's, not the injected
// command's.
const pythonPipelineTLS = `
import socket, ssl, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=30)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode().rstrip("\r\n")
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return lines
reply()
s.sendall(b"EHLO client.test\r\n")
reply()
s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\nNOOP injected\r\n")
print(reply()[-1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="mx.example.test")
tf = t.makefile("rb")
def treply():
    lines = []
    while True:
        l = tf.readline().decode().rstrip("\r\n")
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return lines
t.sendall(b"EHLO client.test\r\n")
print(treply()[0])
t.sendall(b"RCPT TO:<demo@example.test>\r\n")
print(treply()[0])
t.sendall(b"QUIT\r\n")
print(treply()[0])
`

func TestSMTPDSTARTTLSPipelined(t *testing.T) {
	useFilter(t)
	r := tlsRoot(t)
	p, addr := r.startSMTPD()
	out, err := python(t, pythonPipelineTLS, addr)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// After STARTTLS the first reply is EHLO's (250-Hello), the injected
	// MAIL was not executed (RCPT gets 502: no MAIL), QUIT gets 221.
	want := []string{"220 2.0.0 Ready to start TLS", "250-Hello client.test", "502 ", "221 "}
	if len(lines) != len(want) {
		t.Fatalf("replies %q, want %q", lines, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("reply %d: %q, want %q (all: %q)", i, lines[i], w, lines)
		}
	}
	waitFor(t, 10*time.Second, "the discard in the log", func() bool {
		return strings.Contains(p.Log(), "discarded input pipelined after STARTTLS")
	})
}

// --tls without a certificate is refused at start (exit 75).
func TestSMTPDTLSNoCertificate(t *testing.T) {
	r := smtpdRoot(t)
	cmd := exec.Command(bin(t, "smtpd"), "--root", r.Dir, "--tls", "--listen", freeAddr(t))
	out, err := cmd.CombinedOutput()
	if exitCode(err) != 75 || !strings.Contains(string(out), "no certificate") {
		t.Fatalf("smtpd --tls without certificate: exit %d\n%s", exitCode(err), out)
	}
}

// pythonPeerCert prints the SHA-256 of the certificate served for each
// SNI name given (implicit TLS), "-" for none.
const pythonPeerCert = `
import hashlib, socket, ssl, sys
h, p = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for name in sys.argv[2:]:
    s = socket.create_connection((h, int(p)), timeout=30)
    t = ctx.wrap_socket(s, server_hostname=None if name == "-" else name)
    print(hashlib.sha256(t.getpeercert(True)).hexdigest())
    t.close()
`

// certHash returns the SHA-256 of the DER certificate in a PEM file.
func certHash(t *testing.T, path string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, path)))
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// Several host names by SNI, and a renewed certificate used without a
// restart.
func TestSMTPDTLSCertificates(t *testing.T) {
	r := tlsRoot(t)
	other, err := tlsconf.SelfSigned(r.Dir, []string{"mail.other.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mx := filepath.Join(r.Dir, "etc/tls/mx.example.test.crt")
	_, addr := r.startSMTPD("--tls")
	served := func(names ...string) []string {
		out, err := python(t, pythonPeerCert, append([]string{addr}, names...)...)
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		return strings.Fields(out)
	}
	got := served("mail.other.test", "mx.example.test", "-", "unknown.test")
	want := []string{certHash(t, other), certHash(t, mx), certHash(t, mx), certHash(t, mx)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("served %q, want %q (other, mx, mx by default, mx by default)", got, want)
	}
	old := certHash(t, mx)
	if _, err := tlsconf.SelfSigned(r.Dir, []string{"mx.example.test", "127.0.0.1"}, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	renewed := certHash(t, mx)
	if renewed == old {
		t.Fatal("the new certificate is the old one")
	}
	waitFor(t, 15*time.Second, "the renewed certificate", func() bool {
		if served("mx.example.test")[0] == renewed {
			return true
		}
		time.Sleep(200 * time.Millisecond) // the store looks every 2 s
		return false
	})
}
