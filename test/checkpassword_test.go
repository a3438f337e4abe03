package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/privsep"
)

// sysUser is a system account the test makes, with its home and Maildir
// under a temporary directory.
const sysUser = "mailsrv-test-sys"

// A checkpassword program standing for checkpassword-pam and the like:
// one system account, one password, HOME from the account.
const checkpasswordScript = `#!/bin/bash
IFS= read -r -d '' user <&3
IFS= read -r -d '' pass <&3
[ "$user" = "$CP_USER" ] && [ "$pass" = "$CP_PASS" ] || exit 1
export USER="$user" HOME="$CP_HOME"
exec "$@"
`

// TestCheckpasswordSystemAccount serves a system account through an
// external checkpassword program, imapd and pop3d each started as root
// under tcpserver: the mail is in HOME/Maildir, and after the login the
// session runs as the account (a message appended by imapd belongs to
// it). It needs root, as CI has.
func TestCheckpasswordSystemAccount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root, to create the system accounts and start the daemons as root (make test runs as root: it installs Debian packages too)")
	}
	r := newRoot(t)
	r.libexec = systemLibexec(t)
	home := filepath.Join(t.TempDir(), "home")
	openUp(t, filepath.Dir(home))
	acct := systemAccount(t, home)
	box := filepath.Join(home, "Maildir")
	if err := maildir.Create(box); err != nil {
		t.Fatal(err)
	}
	imapDeliver(t, box, filepath.Join(imapTestdata, "simple.eml"))
	if out, err := exec.Command("chown", "-R", sysUser+":", home).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	script := filepath.Join(r.libexec, "checkpassword-test")
	if err := os.WriteFile(script, []byte(checkpasswordScript), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"CP_USER=" + sysUser, "CP_PASS=" + DemoPassword, "CP_HOME=" + home}

	imapAddr := tcpserve(t, env, filepath.Join(r.libexec, "imapd"), "--root", r.Dir, "--checkpassword", script)
	host, port, _ := strings.Cut(imapAddr, ":")
	out, err := python(t, `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
try:
    m.login(sys.argv[3], "wrong")
    print("wrong password accepted")
except imaplib.IMAP4.error:
    pass
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
print("exists", m.select("INBOX")[1][0].decode())
m.append("INBOX", None, None, b"From: a@example.net\r\nSubject: appended\r\n\r\nbody\r\n")
m.logout()
`, host, port, sysUser, DemoPassword)
	if err != nil || !strings.Contains(out, "exists 1") || strings.Contains(out, "accepted") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	msgs := messages(t, box)
	if len(msgs) != 2 {
		t.Fatalf("%d messages in %s, want 2", len(msgs), box)
	}
	for _, m := range msgs {
		if uid := fileUID(t, m); uid != acct.UID {
			t.Errorf("%s belongs to uid %d, want %s (%d): the session did not run as the account", m, uid, sysUser, acct.UID)
		}
	}

	popAddr := tcpserve(t, env, filepath.Join(r.libexec, "pop3d"), "--root", r.Dir, "--checkpassword", script)
	host, port, _ = strings.Cut(popAddr, ":")
	out, err = python(t, `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]))
p.user(sys.argv[3]); p.pass_(sys.argv[4])
print("stat", p.stat()[0])
p.quit()
`, host, port, sysUser, DemoPassword)
	if err != nil || !strings.Contains(out, "stat 2") {
		t.Fatalf("poplib: %v\n%s", err, out)
	}

	// One process serving many users cannot become each: refused.
	cmd := exec.Command(filepath.Join(r.libexec, "imapd"), "--root", r.Dir, "--listen", freeAddr(t), "--checkpassword", script)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "tcpserver") {
		t.Fatalf("imapd --listen --checkpassword as root: %v %s", err, out)
	}
}

// systemAccount creates sysUser with home (once per machine; later runs
// point its home at this run's directory).
func systemAccount(t *testing.T, home string) privsep.Account {
	t.Helper()
	if _, err := privsep.Lookup(sysUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", home, "--shell", "/usr/sbin/nologin", sysUser).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd: %v %s", err, out)
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	a, err := privsep.Lookup(sysUser)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
