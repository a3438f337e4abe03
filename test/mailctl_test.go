package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

const ctlPassword = "violet tram ledger ninety"

// mailctlRun runs the built mailctl with --root root, stdin as its input,
// and returns its stdout, stderr and exit status.
func mailctlRun(t *testing.T, root, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin(t, "mailctl"), append([]string{"--root", root}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := exitCode(err)
	if code < 0 {
		t.Fatalf("mailctl %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// mailctlOK runs mailctl and fails the test unless it exits 0.
func mailctlOK(t *testing.T, root, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := mailctlRun(t, root, stdin, args...)
	if code != 0 {
		t.Fatalf("mailctl %q: exit %d: %s", args, code, errOut)
	}
	return out
}

// mailctlFails runs mailctl and checks its exit status and that stderr
// mentions what.
func mailctlFails(t *testing.T, root, stdin string, code int, what string, args ...string) string {
	t.Helper()
	_, errOut, got := mailctlRun(t, root, stdin, args...)
	if got != code || !strings.Contains(errOut, what) {
		t.Fatalf("mailctl %q: exit %d, stderr %q; want exit %d mentioning %q", args, got, errOut, code, what)
	}
	return errOut
}

func TestMailctlInit(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	mailctlFails(t, root, "", 64, "--hostname", "init")
	// The root from the environment, as in production scripts.
	cmd := exec.Command(bin(t, "mailctl"), "init", "--hostname", "MX.Example.test")
	cmd.Env = append(os.Environ(), config.EnvRoot+"="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("MAILSRV_ROOT=%s mailctl init: %v: %s", root, err, out)
	}
	for _, p := range []string{"etc/domains", "etc/users", "etc/aliases", "mail", "queue/incoming", "queue/tmp"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("after init: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "queue/trigger")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("queue/trigger is not a FIFO: %v %v", fi, err)
	}
	if me := readFile(t, filepath.Join(root, "etc/me")); me != "mx.example.test\n" {
		t.Errorf("etc/me = %q", me)
	}
	mailctlOK(t, root, "", "domain", "add", "example.test")
	mailctlOK(t, root, "", "init", "--hostname", "mx.example.test")
	if got := mailctlOK(t, root, "", "domain", "list"); got != "example.test\n" {
		t.Errorf("a second init changed etc/domains: domain list = %q", got)
	}
	mailctlFails(t, root, "", 73, "refusing", "init", "--hostname", "other.example.test")
	if me := readFile(t, filepath.Join(root, "etc/me")); me != "mx.example.test\n" {
		t.Errorf("etc/me clobbered: %q", me)
	}
	mailctlFails(t, t.TempDir(), "", 65, "host name", "init", "--hostname", "not a name")
}

// TestMailctlUsers runs the user and alias commands and checks, through a
// Config opened before any of them (as a running daemon holds one), that
// every change is seen without a restart.
func TestMailctlUsers(t *testing.T) {
	root := t.TempDir()
	mailctlOK(t, root, "", "init", "--hostname", "mx.example.test")
	reader := config.Open(root)
	resolve := func(s string) ([]config.Target, error) {
		t.Helper()
		a, err := address.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return reader.Resolve(a)
	}
	mailctlFails(t, root, ctlPassword+"\n", 65, "not a local domain", "user", "add", "--password-stdin", "bob@example.test")
	mailctlOK(t, root, "", "domain", "add", "example.test", "example.net")
	if ok, err := reader.IsLocal("example.net"); err != nil || !ok {
		t.Fatalf("reader does not see the new domain: %v %v", ok, err)
	}

	// Weak passwords: exit 65, nothing written, the password never shown.
	for _, weak := range []string{"Zq9!x", "Password2024!", "qwertyuiopasdf", "bobbobbob-lives", "aaaaaaaaaaaaaaaa"} {
		errOut := mailctlFails(t, root, weak+"\n", 65, "weak password", "user", "add", "--password-stdin", "bobbob@example.test")
		if strings.Contains(errOut, weak) {
			t.Errorf("stderr shows the password: %q", errOut)
		}
	}
	if _, ok, _ := reader.LookupUser("bobbob@example.test"); ok {
		t.Fatal("a user with a weak password was added")
	}
	mailctlFails(t, root, "", 64, "--password-stdin", "user", "add", "bob@example.test")
	mailctlFails(t, root, "", 64, "flags go first", "user", "add", "bob@example.test", "--password-stdin")

	out, errOut, code := mailctlRun(t, root, ctlPassword+"\n", "user", "add", "--password-stdin", "--attr", "quota=1G", "bob@example.test")
	if code != 0 || out != "" || strings.Contains(errOut, ctlPassword) {
		t.Fatalf("user add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	u, ok, err := reader.LookupUser("bob@example.test")
	if err != nil || !ok {
		t.Fatalf("reader does not see the new user: %v %v", ok, err)
	}
	if err := auth.Verify(u.Hash, ctlPassword); err != nil {
		t.Errorf("stored hash: %v", err)
	}
	for _, d := range []string{"new", "cur", "tmp", ".Sent/new", ".Trash/cur"} {
		if _, err := os.Stat(filepath.Join(root, "mail/example.test/bob", d)); err != nil {
			t.Errorf("mailbox: %v", err)
		}
	}
	if strings.Contains(readFile(t, filepath.Join(root, "etc/users")), ctlPassword) {
		t.Fatal("etc/users holds the password")
	}
	mailctlFails(t, root, ctlPassword+"\n", 65, "already exists", "user", "add", "--password-stdin", "BOB@example.test")
	mailctlOK(t, root, "carrot piano seventy lake\n", "user", "add", "--password-stdin", "ann@example.net")

	mailctlOK(t, root, "", "alias", "add", "postmaster@example.test", "bob@example.test", "ann@example.net")
	mailctlOK(t, root, "", "alias", "add", "@example.test", "postmaster@example.test", "ext@remote.example")
	mailctlFails(t, root, "", 67, "no user or alias", "alias", "add", "x@example.test", "nobody@example.net")
	ts, err := resolve("whoever+tag@example.test")
	var got []string
	for _, tg := range ts {
		got = append(got, fmt.Sprintf("%s/%v", tg.Addr, tg.Local()))
	}
	if want := []string{"bob@example.test/true", "ann@example.net/true", "ext@remote.example/false"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("catch-all through the reader: %q, %v; want %q", got, err, want)
	}

	if got := mailctlOK(t, root, "", "user", "list"); got != "ann@example.net\nbob@example.test quota=1G\n" {
		t.Errorf("user list = %q", got)
	}
	if got := mailctlOK(t, root, "", "user", "list", "example.net"); got != "ann@example.net\n" {
		t.Errorf("user list example.net = %q", got)
	}
	want := "@example.test: postmaster@example.test, ext@remote.example\npostmaster@example.test: bob@example.test, ann@example.net\n"
	if got := mailctlOK(t, root, "", "alias", "list"); got != want {
		t.Errorf("alias list = %q, want %q", got, want)
	}
	if got := mailctlOK(t, root, "", "domain", "list"); got != "example.net\nexample.test\n" {
		t.Errorf("domain list = %q", got)
	}

	const newPassword = "orchid canal sixty whistle"
	mailctlOK(t, root, newPassword+"\n", "user", "passwd", "--password-stdin", "bob@example.test")
	if u, _, err := reader.LookupUser("bob@example.test"); err != nil || auth.Verify(u.Hash, newPassword) != nil || u.Attrs["quota"] != "1G" {
		t.Errorf("after passwd: %+v, %v", u, err)
	}
	mailctlFails(t, root, newPassword+"\n", 67, "does not exist", "user", "passwd", "--password-stdin", "zed@example.test")

	mailctlFails(t, root, "", 65, "still has 1 users and 2 aliases", "domain", "del", "example.test")
	mailctlOK(t, root, "", "alias", "del", "postmaster@example.test", "ann@example.net")
	mailctlOK(t, root, "", "alias", "del", "@example.test")
	mailctlFails(t, root, "", 67, "does not exist", "alias", "del", "@example.test")
	if _, err := resolve("whoever@example.test"); !errors.Is(err, config.ErrNoSuchUser) {
		t.Errorf("catch-all still resolves after del: %v", err)
	}
	mailctlOK(t, root, "", "alias", "add", "boss@example.test", "bob@example.test")
	if _, errOut, code := mailctlRun(t, root, "", "user", "del", "bob@example.test"); code != 0 ||
		!strings.Contains(errOut, "warning: aliases still name bob@example.test as a target: boss@example.test postmaster@example.test") {
		t.Errorf("user del of a user that aliases name: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "mail/example.test/bob/cur")); err != nil {
		t.Errorf("user del without --purge removed the mailbox: %v", err)
	}
	mailctlFails(t, root, "", 67, "does not exist", "user", "del", "bob@example.test")
	mailctlOK(t, root, "", "user", "del", "--purge", "ann@example.net")
	if _, err := os.Stat(filepath.Join(root, "mail/example.net/ann")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mailbox after --purge: %v", err)
	}
	mailctlOK(t, root, "", "domain", "del", "--force", "example.test")
	if ok, _ := reader.IsLocal("example.test"); ok {
		t.Error("reader still sees the deleted domain")
	}
}

func TestMailctlUsage(t *testing.T) {
	root := t.TempDir()
	mailctlOK(t, root, "", "init", "--hostname", "mx.example.test")
	for _, args := range [][]string{
		{}, {"nosuchcommand"}, {"user"}, {"user", "add", "--nosuchflag", "a@b"},
		{"domain", "add"}, {"domain", "del", "a.test", "b.test"}, {"alias", "add", "a@b.test"},
		{"user", "list", "a", "b"}, {"--nosuchflag"},
	} {
		if _, errOut, code := mailctlRun(t, root, "", args...); code != 64 || errOut == "" {
			t.Errorf("mailctl %q: exit %d, stderr %q; want 64 and a message", args, code, errOut)
		}
	}
}

// TestMailctlConcurrent starts several `mailctl alias add` at once: the
// lock on etc/ makes every one of them land.
func TestMailctlConcurrent(t *testing.T) {
	root := t.TempDir()
	mailctlOK(t, root, "", "init", "--hostname", "mx.example.test")
	mailctlOK(t, root, "", "domain", "add", "example.test")
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := "list@example.test"
			if i%2 == 1 {
				src = fmt.Sprintf("a%d@example.test", i)
			}
			_, errs[i], codes[i] = mailctlRun(t, root, "", "alias", "add", src, fmt.Sprintf("t%d@remote.example", i))
		}()
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 0 {
			t.Errorf("alias add %d: exit %d: %s", i, codes[i], errs[i])
		}
	}
	as, err := config.Open(root).Aliases()
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != n/2+1 || len(as["list@example.test"]) != n/2 {
		t.Errorf("after %d concurrent adds: %v", n, as)
	}
}

// TestMailctlDeliver checks that a user made by mailctl receives mail from
// the real deliver program into the mailbox mailctl created.
func TestMailctlDeliver(t *testing.T) {
	root := t.TempDir()
	mailctlOK(t, root, "", "init", "--hostname", "mx.example.test")
	mailctlOK(t, root, "", "domain", "add", "example.test")
	mailctlOK(t, root, ctlPassword+"\n", "user", "add", "--password-stdin", "bob@example.test")
	mailctlOK(t, root, "", "alias", "add", "info@example.test", "bob@example.test")
	cmd := exec.Command(bin(t, "deliver"), "--root", root, "-d", "info+x@example.test", "-f", "a@b.test")
	cmd.Stdin = strings.NewReader("Subject: hi\r\n\r\nbody\r\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deliver: %v: %s", err, out)
	}
	if got := messages(t, filepath.Join(root, "mail/example.test/bob")); len(got) != 1 {
		t.Errorf("bob's mailbox holds %v, want one message", got)
	}
}

// TestMailctlPrompt runs `mailctl user add` on a pseudo-terminal (Python's
// pty module), types the password twice, and checks that it is not echoed.
func TestMailctlPrompt(t *testing.T) {
	root := t.TempDir()
	mailctlOK(t, root, "", "init", "--hostname", "mx.example.test")
	mailctlOK(t, root, "", "domain", "add", "example.test")
	const script = `
import os, pty, sys, select, termios, time
prog, root, user, pw1, pw2 = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    os.execv(prog, [prog, "--root", root, "user", "add", user])
out = b""
def read_until(s):
    global out
    end = time.time() + 30
    while s not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                b = os.read(fd, 1024)
            except OSError:
                return
            if not b:
                return
            out += b
def echo_off():
    # Type only once mailctl has turned echo off, as a person would.
    end = time.time() + 30
    while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < end:
        time.sleep(0.01)
read_until(b"password for")
echo_off()
os.write(fd, pw1.encode() + b"\n")
read_until(b"Retype")
echo_off()
os.write(fd, pw2.encode() + b"\n")
read_until(b"\x00never")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.stdout.write("\nEXIT %d\n" % os.waitstatus_to_exitcode(status))
`
	type run struct{ user, pw1, pw2, exit string }
	for _, r := range []run{
		{"bob@example.test", ctlPassword, ctlPassword, "EXIT 0"},
		{"ann@example.test", ctlPassword, "something else entirely", "EXIT 65"},
	} {
		out, err := python(t, script, bin(t, "mailctl"), root, r.user, r.pw1, r.pw2)
		if err != nil {
			t.Fatalf("python pty: %v\n%s", err, out)
		}
		if !strings.Contains(out, r.exit) {
			t.Errorf("%s: want %s, got:\n%s", r.user, r.exit, out)
		}
		if strings.Contains(out, r.pw1) || strings.Contains(out, r.pw2) {
			t.Errorf("the password was echoed:\n%s", out)
		}
	}
	if u, ok, err := config.Open(root).LookupUser("bob@example.test"); err != nil || !ok || auth.Verify(u.Hash, ctlPassword) != nil {
		t.Errorf("user added on the terminal: %v %v", ok, err)
	}
	if _, ok, _ := config.Open(root).LookupUser("ann@example.test"); ok {
		t.Error("user added although the two passwords differed")
	}
}

// rcptScript asks an SMTP server, with Python's smtplib, about each
// recipient and prints "address code" for each.
const rcptScript = `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="client.test", timeout=60)
s.ehlo()
s.mail("sender@remote.example")
for r in sys.argv[3:]:
    code, _ = s.rcpt(r)
    print(r, code)
s.quit()
`

// TestMailctlSMTPDSeesChanges checks the promise that daemons see
// mailctl's changes without a restart: one smtpd process answers RCPT
// differently as users and aliases come and go.
func TestMailctlSMTPDSeesChanges(t *testing.T) {
	r := newRoot(t)
	_, addr := r.startSMTPD()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		var rcpts []string
		for rc := range want {
			rcpts = append(rcpts, rc)
		}
		slices.Sort(rcpts)
		out, err := python(t, rcptScript, append([]string{host, port}, rcpts...)...)
		if err != nil {
			t.Fatalf("%s: smtplib: %v\n%s", step, err, out)
		}
		for _, rc := range rcpts {
			if !strings.Contains(out, rc+" "+want[rc]) {
				t.Errorf("%s: want %s %s*, smtplib said:\n%s", step, rc, want[rc], out)
			}
		}
	}
	check("before", map[string]string{"new@example.test": "5", "team@example.test": "5", "demo@example.test": "250"})
	mailctlOK(t, r.Dir, ctlPassword+"\n", "user", "add", "--password-stdin", "new@example.test")
	check("after user add", map[string]string{"new@example.test": "250", "new+tag@example.test": "250", "team@example.test": "5"})
	mailctlOK(t, r.Dir, "", "alias", "add", "team@example.test", "new@example.test", "demo@example.test")
	check("after alias add", map[string]string{"team@example.test": "250"})
	mailctlOK(t, r.Dir, "", "alias", "del", "team@example.test")
	mailctlOK(t, r.Dir, "", "user", "del", "new@example.test")
	check("after del", map[string]string{"new@example.test": "5", "team@example.test": "5", "demo@example.test": "250"})
}
