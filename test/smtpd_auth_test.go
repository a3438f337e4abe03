package e2e

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonStdio runs smtpd on one end of a socket pair as tcpserver would,
// with TCPREMOTEIP naming a client that is not on loopback, and talks to
// it with smtplib: in clear text only SCRAM-SHA-256 is offered and PLAIN
// is refused (538 5.7.11); after STARTTLS PLAIN and LOGIN are offered and
// login works. With "implicit" the socket is TLS from the start (--tls).
const pythonStdio = `
import base64, os, smtplib, socket, ssl, subprocess, sys
smtpd, root, mode, user, pw = sys.argv[1:6]
a, b = socket.socketpair()
env = dict(os.environ, TCPREMOTEIP="192.0.2.7", TCPREMOTEPORT="40000", TCPLOCALIP="192.0.2.1", TCPLOCALPORT="587")
args = [smtpd, "--root", root, "--submission"] + (["--tls"] if mode == "implicit" else [])
proc = subprocess.Popen(args, stdin=b, stdout=b, stderr=open(root + "/stdio-" + mode + ".log", "ab"), env=env)
b.close()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP(timeout=30)
s._host = "mx.example.test"
s.sock = ctx.wrap_socket(a, server_hostname="mx.example.test") if mode == "implicit" else a
print("greeting", s.getreply()[0])
s.ehlo("client.test")
if mode != "implicit":
    print("clear-auth", s.esmtp_features.get("auth", "").strip())
    print("clear-plain", s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0" + user + "\0" + pw).encode()).decode())[0])
    print("clear-mail", s.docmd("MAIL", "FROM:<" + user + ">")[0])
    print("starttls", s.starttls(context=ctx)[0])
    s.ehlo("client.test")
print("tls-auth", s.esmtp_features.get("auth", "").strip())
print("login", s.login(user, pw)[0])
s.sendmail(user, [user], "From: " + user + "\r\nSubject: stdio\r\n\r\nhello\r\n")
s.quit()
print("exit", proc.wait(timeout=30))
`

func TestSMTPDStdioTLSAuth(t *testing.T) {
	f := useFilter(t)
	r := tlsRoot(t)
	for _, mode := range []string{"starttls", "implicit"} {
		out, err := python(t, pythonStdio, bin(t, "smtpd"), r.Dir, mode, "demo@example.test", DemoPassword)
		if err != nil {
			t.Fatalf("%s: python: %v\n%s", mode, err, out)
		}
		want := "greeting 220\n"
		if mode == "starttls" {
			want += "clear-auth SCRAM-SHA-256\nclear-plain 538\nclear-mail 530\nstarttls 220\n"
		}
		want += "tls-auth SCRAM-SHA-256 PLAIN LOGIN\nlogin 235\n"
		log := readFile(t, filepath.Join(r.Dir, "stdio-"+mode+".log"))
		if out != want+"exit 0\n" {
			t.Fatalf("%s: smtplib said:\n%s\nwant:\n%sexit 0\nsmtpd log:\n%s", mode, out, want, log)
		}
		if strings.Contains(log, "level=WARN") || strings.Contains(log, "level=ERROR") {
			t.Errorf("%s: smtpd log:\n%s", mode, log)
		}
	}
	msgs, args := f.saved()
	if len(msgs) != 2 {
		t.Fatalf("filter got %d messages, want 2", len(msgs))
	}
	for i, m := range msgs {
		if strings.Contains(m, "192.0.2.7") || !strings.Contains(m, "with ESMTPSA") {
			t.Errorf("message %d: the Received header leaks the client or lacks ESMTPSA:\n%s", i, m)
		}
		if !strings.Contains(args[i], "demo@example.test") {
			t.Errorf("message %d: args %q", i, args[i])
		}
	}
}

// pythonSubmit logs in over STARTTLS and tries senders: its own address,
// an alias of its own, someone else's address and alias, another domain;
// then a message whose From header is not its own. It prints the codes.
const pythonSubmit = `
import smtplib, ssl, sys
h, p = sys.argv[1].rsplit(":", 1)
user, pw = sys.argv[2:4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP(h, int(p), timeout=30)
s.ehlo("laptop.test")
print("mail-before-auth", s.mail(user)[0])
s.rset()
s.starttls(context=ctx)
s.ehlo("laptop.test")
s.login(user, pw)
for sender in [user, "demo+lists@example.test", "info@example.test", "x@catchall.test", "other@example.test", "boss@elsewhere.test"]:
    print(sender, s.mail(sender)[0])
    s.rset()
def send(sender, frm, rcpt):
    try:
        s.sendmail(sender, [rcpt], "From: " + frm + "\r\nSubject: submitted\r\n\r\nbody\r\n")
        return 250
    except smtplib.SMTPDataError as e:
        s.rset()
        return e.smtp_code
print("from-other", send(user, "Other <other@example.test>", "other@example.test"))
print("from-second-other", send(user, "Me <" + user + ">, other@example.test", "other@example.test"))
print("from-own", send(user, "=?utf-8?q?D=C3=A9mo?= <" + user + ">", "demo@example.test"))
print("null-sender", send("", user, "demo@example.test"))
s.quit()
`

// Submission through the real queue: AUTH before MAIL, senders checked at
// MAIL and in the From header, the message delivered to the local user
// with a Received header that does not name the client.
func TestSMTPDSubmission(t *testing.T) {
	r := tlsRoot(t)
	r.addUser("other@example.test")
	r.write("etc/aliases", "info@example.test: demo@example.test, other@example.test\n@catchall.test: demo@example.test\n")
	r.startQueue()
	_, addr := r.startSMTPD("--submission")
	out, err := python(t, pythonSubmit, addr, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "mail-before-auth 530\ndemo@example.test 250\ndemo+lists@example.test 250\ninfo@example.test 250\n" +
		"x@catchall.test 250\nother@example.test 553\nboss@elsewhere.test 553\n" +
		"from-other 554\nfrom-second-other 554\nfrom-own 250\nnull-sender 250\n"
	if out != want {
		t.Fatalf("smtplib:\n%s\nwant:\n%s", out, want)
	}
	var msgs []string
	waitFor(t, 15*time.Second, "delivery to demo", func() bool {
		msgs = messages(t, r.mailbox("demo"))
		return len(msgs) == 2
	})
	if n := len(messages(t, r.mailbox("other"))); n != 0 {
		t.Errorf("other@ got %d messages", n)
	}
	for _, name := range msgs {
		m := readFile(t, name)
		head, _, _ := strings.Cut(m, "\nSubject")
		if !strings.Contains(head, "Received: by mx.example.test (mailsrv) with ESMTPSA id ") ||
			strings.Contains(head, "127.0.0.1") || strings.Contains(head, "laptop.test") {
			t.Fatalf("delivered message:\n%s", m)
		}
	}
}

// The administrator can let a user send as more (send-as attribute) and
// put the client in the Received header (--received-ip).
func TestSMTPDSubmissionSendAs(t *testing.T) {
	f := useFilter(t)
	r := tlsRoot(t)
	users := readFile(t, filepath.Join(r.Dir, "etc/users"))
	r.write("etc/users", strings.TrimSpace(users)+":send-as=boss@elsewhere.test,@catchall.test\n")
	_, addr := r.startSMTPD("--submission", "--received-ip")
	out := swaks(t, "--server", addr, "--tls", "--auth", "PLAIN", "--auth-user", "demo@example.test",
		"--auth-password", DemoPassword, "--helo", "laptop.test", "--from", "boss@elsewhere.test",
		"--to", "demo@example.test", "--header", "From: Boss <boss@elsewhere.test>")
	if !strings.Contains(out, "<~  250 2.0.0 OK: queued") {
		t.Fatalf("send-as: \n%s", out)
	}
	out = swaks(t, "--server", addr, "--tls", "--auth", "PLAIN", "--auth-user", "demo@example.test",
		"--auth-password", DemoPassword, "--from", "boss2@elsewhere.test", "--to", "demo@example.test")
	if !strings.Contains(out, "<~* 553 5.7.1") {
		t.Fatalf("not in send-as: \n%s", out)
	}
	msgs, _ := f.saved()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "Received: from laptop.test ([127.0.0.1])\n\tby mx.example.test (mailsrv) with ESMTPSA") {
		t.Fatalf("filter got %q", msgs)
	}
}

// pythonGuess makes 50 wrong AUTH PLAIN attempts from 127.0.0.1 over 10
// parallel connections spread over two smtpd processes, and prints the
// reply codes it got, counted.
const pythonGuess = `
import base64, collections, smtplib, sys, threading
addrs, user = sys.argv[1].split(","), sys.argv[2]
codes = collections.Counter()
lock = threading.Lock()
def guess(i):
    h, p = addrs[i % len(addrs)].rsplit(":", 1)
    s = smtplib.SMTP(h, int(p), timeout=60)
    s.ehlo("guesser.test")
    for j in range(5):
        pw = "guess-%d-%d" % (i, j)
        code = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0" + user + "\0" + pw).encode()).decode())[0]
        with lock:
            codes[code] += 1
    s.quit()
ts = [threading.Thread(target=guess, args=(i,)) for i in range(10)]
for t in ts: t.start()
for t in ts: t.join()
print(" ".join("%d:%d" % kv for kv in sorted(codes.items())))
`

// pythonLogin tries one password per argument on a new connection each,
// printing each full reply.
const pythonLogin = `
import base64, smtplib, sys
h, p = sys.argv[1].rsplit(":", 1)
user = sys.argv[2]
for pw in sys.argv[3:]:
    s = smtplib.SMTP(h, int(p), timeout=60)
    s.ehlo("guesser.test")
    code, msg = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0" + user + "\0" + pw).encode()).decode())
    print(code, msg.decode())
    s.quit()
`

// Password guessing: 50 wrong passwords from one address over parallel
// connections to two processes. Later attempts are refused (454 4.7.0);
// during the lockout the right password gets the very same answer as a
// wrong one; the lockout ends by itself; no password is logged.
func TestSMTPDBruteForce(t *testing.T) {
	r := smtpdRoot(t)
	// Short delays and a lockout of 6 s, so that the test is quick. The
	// account is not locked: the address is what this test watches.
	r.write("etc/throttle", "ip.free 2\nip.delay 20ms\nip.max-delay 100ms\nip.lock-after 10\nip.lockout 6s\nip.window 1m\n"+
		"account.lock-after 0\naccount.free 50\n")
	p1, addr1 := r.startSMTPD()
	p2, addr2 := r.startSMTPD()
	out, err := python(t, pythonGuess, addr1+","+addr2, "demo@example.test")
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	counts := map[string]int{}
	for _, kv := range strings.Fields(out) {
		k, v, _ := strings.Cut(kv, ":")
		n := 0
		for _, c := range v {
			n = n*10 + int(c-'0')
		}
		counts[k] = n
	}
	// At most lock-after wrong passwords were checked in each window; the
	// rest were refused without a check.
	if counts["535"]+counts["454"] != 50 || counts["535"] > 20 || counts["454"] < 30 {
		t.Fatalf("50 guesses got %q: want at most 20 checked (535), the rest refused (454)", out)
	}

	// Still locked out: a wrong, the right and a wrong password, on the
	// other process than the one that counted first, all get one answer.
	out, err = python(t, pythonLogin, addr2, "demo@example.test", "wrong-1", DemoPassword, "wrong-2")
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "454 4.7.0") || lines[1] != lines[0] || lines[2] != lines[0] {
		t.Fatalf("during the lockout: %q, want three identical 454 4.7.0 replies", lines)
	}

	// The lockout ends by itself: the right password works again.
	waitFor(t, 20*time.Second, "the end of the lockout", func() bool {
		out, err := python(t, pythonLogin, addr1, "demo@example.test", DemoPassword)
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		if strings.HasPrefix(out, "235 ") {
			return true
		}
		time.Sleep(500 * time.Millisecond)
		return false
	})

	// Every attempt was logged, none with its password or payload.
	logs := p1.Log() + p2.Log()
	if n := strings.Count(logs, "msg=auth ") + strings.Count(logs, `msg="auth `); n < 53 {
		t.Errorf("%d auth lines logged, want one per attempt (at least 53)", n)
	}
	for _, secret := range []string{DemoPassword, "guess-0-0", "wrong-1",
		base64.StdEncoding.EncodeToString([]byte("\x00demo@example.test\x00" + DemoPassword))} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
	if !strings.Contains(logs, "result=throttled") || !strings.Contains(logs, "result=fail") {
		t.Errorf("log lacks result=throttled or result=fail")
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "run/throttle")); err != nil {
		t.Errorf("no shared throttle state: %v", err)
	}
}
