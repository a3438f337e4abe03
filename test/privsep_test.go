package e2e

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsrv/pkg/privsep"
)

// systemRoot is a root made by `mailctl init --system`, with the programs
// installed where the system accounts may run them. It needs root (make
// test as a whole runs as root: it installs Debian packages too).
func systemRoot(t *testing.T) *Root {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root, to create the system accounts and start the daemons as root (make test runs as root: it installs Debian packages too)")
	}
	r := newRoot(t)
	r.libexec = systemLibexec(t)
	openUp(t, r.Dir)
	out := mailctlOK(t, r.Dir, "", "init", "--hostname", "mx.example.test", "--system",
		"--queue-program", filepath.Join(r.libexec, "queue"))
	t.Logf("init --system:\n%s", out)
	return r
}

// TestLeastPrivilege runs the whole chain as `mailctl init --system` sets
// it up, every daemon started as root and dropping to its account: smtpd
// (mailsrv-smtpd, users and passwords through mailctl auth-helper), queue
// run (mailsrv-queue, deliver workers as mailsrv-mail through the
// spawner), imapd (mailsrv-mail). Then it shows what the smtpd account
// cannot open. It needs root (make test as a whole does).
func TestLeastPrivilege(t *testing.T) {
	r := systemRoot(t)
	accts := map[string]privsep.Account{}
	for _, n := range []string{privsep.SMTPDUser, privsep.QueueUser, privsep.MailUser} {
		a, err := privsep.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		accts[n] = a
	}
	if fi, err := os.Stat(filepath.Join(r.libexec, "queue")); err != nil || fi.Mode()&fs.ModeSetgid == 0 {
		t.Fatalf("queue program not set-group-ID: %v %v", fi.Mode(), err)
	}
	// A user added by root after --system gets a mailbox mail can use.
	mailctlOK(t, r.Dir, DemoPassword+"\n", "user", "add", "--password-stdin", "bob@example.test")
	mailctlOK(t, r.Dir, "", "tls", "selfsigned", "mx.example.test")
	key := filepath.Join(r.Dir, "etc/tls/mx.example.test.key")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o640 || fileGID(t, key) != groupID(t, privsep.Group) {
		t.Fatalf("key after --system: %v %v, want 0640 group %s", fi.Mode(), err, privsep.Group)
	}

	q := r.startQueue("--user", privsep.QueueUser, "--deliver-user", privsep.MailUser)
	smtpd, addr := r.startSMTPD("--user", privsep.SMTPDUser, "--auth-user", privsep.MailUser)
	imapAddr := freeAddr(t)
	imapd := r.start("imapd", "--listen", imapAddr, "--user", privsep.MailUser)
	waitListen(t, imapAddr)
	popAddr := freeAddr(t)
	pop3d := r.start("pop3d", "--listen", popAddr, "--user", privsep.MailUser)
	waitListen(t, popAddr)

	// A certificate renewed after the daemons dropped privilege is read
	// by them, and served.
	time.Sleep(2100 * time.Millisecond) // past the store's recheck interval and mtime granularity
	mailctlOK(t, r.Dir, "", "tls", "selfsigned", "mx.example.test")
	time.Sleep(2100 * time.Millisecond)
	crt := filepath.Join(r.Dir, "etc/tls/mx.example.test.crt")
	host, port, _ := strings.Cut(addr, ":")
	got, err := python(t, `
import smtplib, ssl, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)
s.ehlo("client.example.net")
ctx = ssl.create_default_context(cafile=sys.argv[4])
ctx.check_hostname = False
s.starttls(context=ctx)
der = s.sock.getpeercert(binary_form=True)
print("renewed certificate served:", der == ssl.PEM_cert_to_DER_cert(open(sys.argv[4]).read()))
s.ehlo("client.example.net")
try:
    s.login("demo@example.test", "wrong password")
    print("wrong password accepted")
except smtplib.SMTPAuthenticationError as e:
    print("wrong:", e.smtp_code)
s.login("demo@example.test", sys.argv[3])
print("login ok")
code, msg = s.mail("demo@example.test")[0], None
print("nobody:", s.rcpt("nobody@example.test")[0])
print("bob:", s.rcpt("bob@example.test")[0])
print("demo:", s.rcpt("demo@example.test")[0])
print("data:", s.data(b"From: demo@example.test\r\nSubject: privsep\r\n\r\nseparated\r\n")[0])
s.quit()
`, host, port, DemoPassword, crt)
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, got)
	}
	for _, want := range []string{"renewed certificate served: True", "wrong: 535", "login ok", "nobody: 550", "bob: 250", "demo: 250", "data: 250"} {
		if !strings.Contains(got, want) {
			t.Fatalf("smtplib: want %q in\n%s", want, got)
		}
	}
	var delivered []string
	waitFor(t, 30*time.Second, "delivery to demo and bob", func() bool {
		delivered = append(messages(t, r.mailbox("demo")), messages(t, r.mailbox("bob"))...)
		return len(delivered) == 2
	})
	mail := accts[privsep.MailUser]
	for _, f := range delivered {
		if uid := fileUID(t, f); uid != mail.UID {
			t.Errorf("%s owned by uid %d, want %s (%d)", f, uid, mail.Name, mail.UID)
		}
	}

	// Each daemon runs as its account, every id (real, effective, saved).
	for proc, name := range map[*Proc]string{smtpd: privsep.SMTPDUser, q: privsep.QueueUser, imapd: privsep.MailUser, pop3d: privsep.MailUser} {
		if ids := procUIDs(t, proc.cmd.Process.Pid); ids != strings.Repeat(strconv.Itoa(accts[name].UID)+" ", 4) {
			t.Errorf("%s: uids %q, want all %d (%s)", proc.cmd.Path, ids, accts[name].UID, name)
		}
	}

	// What the smtpd account can and cannot open.
	users := filepath.Join(r.Dir, "etc/users")
	for _, f := range []string{users, delivered[0], r.mailbox("demo"), filepath.Join(r.Dir, "queue/incoming")} {
		if err := openAs(accts[privsep.SMTPDUser], f); err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Errorf("%s could open %s: %v", privsep.SMTPDUser, f, err)
		}
	}
	if err := openAs(accts[privsep.SMTPDUser], filepath.Join(r.Dir, "etc/aliases")); err != nil {
		t.Errorf("%s cannot read etc/aliases: %v", privsep.SMTPDUser, err)
	}
	// The mail account can (the check above is not a broken helper).
	for _, f := range []string{users, delivered[0]} {
		if err := openAs(mail, f); err != nil {
			t.Errorf("%s cannot open %s: %v", mail.Name, f, err)
		}
	}

	// Anyone may queue mail through the set-group-ID queue inject, but
	// only smtpd's account (and root) may say who authenticated.
	lmtpIn := "LHLO local\r\nMAIL FROM:<demo@example.test> AUTH=demo@example.test\r\nRCPT TO:<bob@example.test>\r\n" +
		"DATA\r\nFrom: demo@example.test\r\nSubject: local\r\n\r\nlocal\r\n.\r\nQUIT\r\n"
	nobody, err := privsep.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []privsep.Account{nobody, accts[privsep.SMTPDUser]} {
		cmd := exec.Command(filepath.Join(r.libexec, "queue"), "--root", r.Dir, "inject", "--lmtp")
		cmd.SysProcAttr = who.SysProcAttr()
		cmd.Stdin = strings.NewReader(lmtpIn)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "250 2.0.0") {
			t.Fatalf("queue inject --lmtp as %s: %v\n%s", who.Name, err, out)
		}
		ignored := strings.Contains(string(out), "AUTH= from an untrusted caller ignored")
		if ignored != (who.Name == "nobody") {
			t.Errorf("queue inject as %s: AUTH= ignored %v\n%s", who.Name, ignored, out)
		}
	}

	// imapd, running as mailsrv-mail, serves the delivered message.
	host, port, _ = strings.Cut(imapAddr, ":")
	got, err = python(t, `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login("demo@example.test", sys.argv[3])
typ, data = m.select("INBOX")
print("exists", data[0].decode())
typ, data = m.fetch("1", "(BODY[TEXT])")
print(data[0][1].decode().strip())
m.logout()
`, host, port, DemoPassword)
	if err != nil || !strings.Contains(got, "exists 1") || !strings.Contains(got, "separated") {
		t.Fatalf("imaplib: %v\n%s", err, got)
	}

	// pop3d, running as mailsrv-mail, too (it writes its lock and flags),
	// once the two messages queue inject took are in.
	waitFor(t, 30*time.Second, "bob's three messages", func() bool { return len(messages(t, r.mailbox("bob"))) == 3 })
	host, port, _ = strings.Cut(popAddr, ":")
	got, err = python(t, `
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]))
p.user("bob@example.test"); p.pass_(sys.argv[3])
print("stat", p.stat()[0])
print(b"\n".join(p.retr(1)[1]).decode())
p.quit()
`, host, port, DemoPassword)
	if err != nil || !strings.Contains(got, "stat 3") || !strings.Contains(got, "separated") {
		t.Fatalf("poplib: %v\n%s", err, got)
	}

	// A helper started as root cannot be started again after the drop: when
	// one dies, its daemon stops, for the supervisor to start it afresh.
	for _, d := range []struct {
		proc   *Proc
		helper string
	}{{smtpd, "mailctl"}, {q, "queue"}} {
		pid := childNamed(t, d.proc.cmd.Process.Pid, d.helper)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.proc.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s still running 20 s after its %s helper died", d.proc.cmd.Path, d.helper)
		}
		if !strings.Contains(d.proc.Log(), "ended: stopping, for the supervisor") {
			t.Errorf("%s did not say why it stopped", d.proc.cmd.Path)
		}
	}
}

// childNamed returns the PID of the child of pid running the program
// name (from /proc/PID/task/*/children).
func childNamed(t *testing.T, pid int, name string) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			exe, _ := os.Readlink("/proc/" + c + "/exe")
			if filepath.Base(exe) == name {
				n, _ := strconv.Atoi(c)
				return n
			}
		}
	}
	t.Fatalf("no %s child of %d", name, pid)
	return 0
}

// systemLibexec copies the programs where the system accounts may run
// them (the test binaries' directory is private to root).
func systemLibexec(t *testing.T) string {
	dir := t.TempDir()
	openUp(t, dir)
	for _, prog := range []string{"smtpd", "queue", "deliver", "mailctl", "imapd", "pop3d"} {
		src, err := os.Open(bin(t, prog))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(filepath.Join(dir, prog), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0755)
		if err == nil {
			_, err = io.Copy(dst, src)
			err = errors.Join(err, dst.Close())
		}
		if err := errors.Join(err, src.Close()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// openUp lets every account through dir and its parents (t.TempDir makes
// them 0700).
func openUp(t *testing.T, dir string) {
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o005 == 0o005 {
			continue
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
			t.Fatal(err)
		}
	}
}

func fileGID(t *testing.T, path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Gid)
}

func groupID(t *testing.T, name string) int {
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	id, err := strconv.Atoi(g.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func fileUID(t *testing.T, path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// procUIDs returns the "Uid:" line of /proc/PID/status: real, effective,
// saved and file-system UIDs, each followed by a space.
func procUIDs(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Join(strings.Fields(rest), " ") + " "
		}
	}
	t.Fatalf("no Uid line for pid %d", pid)
	return ""
}

// openAs tries to read path (a file, or list a directory) as account a.
func openAs(a privsep.Account, path string) error {
	cmd := exec.Command("cat", path)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		cmd = exec.Command("ls", path)
	}
	cmd.SysProcAttr = a.SysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}
