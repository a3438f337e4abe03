package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/privsep"
)

// authSockIMAP logs in with imaplib: SCRAM-SHA-256 on offer, a wrong
// password refused, the right one accepted (LOGIN, INBOX selected; then
// AUTHENTICATE PLAIN).
const authSockIMAP = `
import imaplib, sys
host, port, user, pw = sys.argv[1:5]
m = imaplib.IMAP4(host, int(port), timeout=60)
assert "AUTH=SCRAM-SHA-256" in m.capabilities, m.capabilities
try:
    m.login(user, "wrong " + pw)
    raise SystemExit("wrong password accepted")
except imaplib.IMAP4.error as e:
    assert "[AUTHENTICATIONFAILED]" in str(e), e
m.logout()
m = imaplib.IMAP4(host, int(port), timeout=60)
m.login(user, pw)
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", (typ, data)
m.logout()
m = imaplib.IMAP4(host, int(port), timeout=60)
typ, _ = m.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + pw.encode())
assert typ == "OK", typ
m.logout()
print("ok")
`

// authSockPOP3 does the same with poplib: SASL SCRAM-SHA-256 in CAPA,
// USER/PASS wrong then right.
const authSockPOP3 = `
import poplib, sys
host, port, user, pw = sys.argv[1:5]
p = poplib.POP3(host, int(port), timeout=60)
caps = p.capa()
assert "SCRAM-SHA-256" in caps.get("SASL", []), caps
p.user(user)
try:
    p.pass_("wrong " + pw)
    raise SystemExit("wrong password accepted")
except poplib.error_proto as e:
    assert b"[AUTH]" in e.args[0], e
p = poplib.POP3(host, int(port), timeout=60)
p.user(user)
p.pass_(pw)
assert p.stat()[0] == 1, p.stat()
p.quit()
print("ok")
`

// The auth service (mailctl auth-helper --listen on ROOT/run/auth.sock,
// the default socket of imapd and pop3d) checks the passwords of imapd
// under tcpserver (a process per connection) and of pop3d --listen, as
// its log shows (one line per check, right and wrong), while SCRAM stays
// on offer; it upgrades demo's line (SCRAM keys added). A second service
// on the same socket exits 75. Once the service has stopped, the daemons
// check passwords themselves.
func TestAuthServiceIMAPPOP3(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	sock := filepath.Join(r.Dir, "run", "auth.sock")
	helper := r.start("mailctl", "auth-helper", "--listen", sock, "--debug")
	waitFor(t, 20*time.Second, "the auth socket", func() bool { return contains(helper.Log(), "auth service listening") })
	if _, stderr, code := mailctlRun(t, r.Dir, "", "auth-helper", "--listen", sock); code != 75 || !contains(stderr, "already running") {
		t.Fatalf("a second service on the socket: exit %d, %s", code, stderr)
	}

	checks := func(found string) int {
		re := regexp.MustCompile(`(?m)^.* msg=check .* user=demo@example.test found=` + found + ` `)
		return len(re.FindAllString(helper.Log(), -1))
	}
	imapAddr := imapTcpserver(t, r, nil)
	host, port, _ := strings.Cut(imapAddr, ":")
	if out, err := python(t, authSockIMAP, host, port, "demo@example.test", DemoPassword); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	// The log is copied from the service's stderr by another goroutine:
	// waited for, not read at once.
	waitChecks := func(ok, bad int) {
		t.Helper()
		waitFor(t, 20*time.Second, fmt.Sprintf("%d right and %d wrong checks in the service's log", ok, bad),
			func() bool { return checks("true") == ok && checks("false") == bad })
	}
	waitChecks(2, 1)
	if !contains(readFile(t, filepath.Join(r.Dir, "etc", "users")), "scram-sha-256=") {
		t.Error("demo's line was not upgraded by the service")
	}
	// --auth-socket "": imapd checks by itself, the service is not asked.
	host, port, _ = strings.Cut(imapTcpserver(t, r, nil, "--auth-socket", ""), ":")
	if out, err := python(t, authSockIMAP, host, port, "demo@example.test", DemoPassword); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("imaplib, --auth-socket \"\": %v\n%s", err, out)
	}
	if ok, bad := checks("true"), checks("false"); ok != 2 || bad != 1 {
		t.Fatalf("with --auth-socket \"\": the service logged %d right and %d wrong checks, want still 2 and 1", ok, bad)
	}

	pop3d, popAddr := r.pop3Start("--debug")
	host, port, _ = strings.Cut(popAddr, ":")
	if out, err := python(t, authSockPOP3, host, port, "demo@example.test", DemoPassword); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	waitChecks(3, 2)
	if contains(pop3d.Log(), "auth service not available") {
		t.Errorf("pop3d did not use the service:\n%s", pop3d.Log())
	}

	helper.Stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after the service stopped: %v", err)
	}
	if out, err := python(t, authSockPOP3, host, port, "demo@example.test", DemoPassword); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("poplib without the service: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "pop3d's log of the missing service", func() bool { return contains(pop3d.Log(), "auth service not available") })
	if n := strings.Count(pop3d.Log(), "auth service not available"); n != 1 {
		t.Errorf("pop3d logged the missing service %d times, want once:\n%s", n, pop3d.Log())
	}
}

// As mailctl init --system and the service definitions set it up: the
// service started as root with --user mailsrv-mail makes the socket (0600,
// owned by mailsrv-mail) and runs as that account; imapd --user
// mailsrv-mail logs in through it; the smtpd account cannot even connect;
// after a SIGKILL the stale socket is replaced by the next start.
func TestAuthServiceLeastPrivilege(t *testing.T) {
	r := systemRoot(t)
	mail, err := privsep.Lookup(privsep.MailUser)
	if err != nil {
		t.Fatal(err)
	}
	smtpdAcct, err := privsep.Lookup(privsep.SMTPDUser)
	if err != nil {
		t.Fatal(err)
	}
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	if err := exec.Command("chown", "-R", privsep.MailUser+":", r.mailbox("demo")).Run(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(r.Dir, "run", "auth.sock")
	startService := func() *Proc {
		p := r.start("mailctl", "auth-helper", "--listen", sock, "--user", privsep.MailUser, "--debug")
		waitFor(t, 20*time.Second, "the auth service", func() bool { return contains(p.Log(), "auth service listening") })
		return p
	}
	helper := startService()
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fileUID(t, sock) != mail.UID {
		t.Fatalf("socket: %v %v uid %d, want 0600 owned by %s", fi.Mode(), err, fileUID(t, sock), mail.Name)
	}
	if ids := procUIDs(t, helper.cmd.Process.Pid); ids != strings.Repeat(strconv.Itoa(mail.UID)+" ", 4) {
		t.Errorf("auth service uids %q, want all %d", ids, mail.UID)
	}

	imapAddr := freeAddr(t)
	r.start("imapd", "--listen", imapAddr, "--user", privsep.MailUser)
	waitListen(t, imapAddr)
	host, port, _ := strings.Cut(imapAddr, ":")
	login := func(p *Proc) {
		t.Helper()
		if out, err := python(t, authSockIMAP, host, port, "demo@example.test", DemoPassword); err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("imaplib: %v\n%s", err, out)
		}
		want := regexp.MustCompile(`msg=check .*peer_uid=` + strconv.Itoa(mail.UID) + ` .*user=demo@example.test found=true `)
		waitFor(t, 20*time.Second, "a check from imapd in the service's log", func() bool { return want.MatchString(p.Log()) })
	}
	login(helper)

	// /usr/bin/python3: a shim under /root (pyenv) is out of the account's reach.
	cmd := exec.Command("/usr/bin/python3", "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except PermissionError:
    print("permission denied")`, sock)
	cmd.SysProcAttr = smtpdAcct.SysProcAttr()
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "permission denied" {
		t.Errorf("%s connecting: %v %s", smtpdAcct.Name, err, out)
	}

	helper.Kill()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("after SIGKILL: %v, want the stale socket left", err)
	}
	login(startService())
}
