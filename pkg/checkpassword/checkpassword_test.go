package checkpassword

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// script is a checkpassword program in bash, written from the interface
// description: it reads three NUL-terminated fields from descriptor 3.
const script = `#!/bin/bash
IFS= read -r -d '' user <&3 || exit 2
IFS= read -r -d '' pass <&3 || exit 2
IFS= read -r -d '' stamp <&3 || exit 2
[ -n "$stamp" ] || exit 2
case "$user" in
temp) exit 111 ;;
slow) exec sleep 60 ;;
misuse) exit 2 ;;
esac
[ "$pass" = "sesame open" ] || exit 1
export USER="$user" HOME="/home/$user"
exec "$@"
`

func writeScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "checkpw")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProgram(t *testing.T) {
	p := &Program{Argv: []string{writeScript(t)}, Timeout: 2 * time.Second}
	ctx := context.Background()
	u, err := p.Check(ctx, "sysuser", "sesame open")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if u.Addr.Local != "sysuser" || u.Addr.Domain != "" || u.Attrs["home"] != "/home/sysuser" {
		t.Errorf("user %+v", u)
	}
	u, err = p.Check(ctx, "ann@example.org", "sesame open")
	if err != nil || u.Addr.Key() != "ann@example.org" {
		t.Errorf("address user: %+v, %v", u, err)
	}
	if _, err := p.Check(ctx, "sysuser", "sesame shut"); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("wrong password: %v, want ErrMismatch", err)
	}
	if _, err := p.Check(ctx, "temp", "x"); !errors.Is(err, ErrTemporary) {
		t.Errorf("exit 111: %v, want ErrTemporary", err)
	}
	if _, err := p.Check(ctx, "misuse", "x"); err == nil || errors.Is(err, auth.ErrMismatch) || errors.Is(err, ErrTemporary) {
		t.Errorf("exit 2: %v, want a plain error", err)
	}
	p.Timeout = 200 * time.Millisecond
	if _, err := p.Check(ctx, "slow", "x"); !errors.Is(err, ErrTemporary) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("hanging program: %v, want a timeout", err)
	}
	if _, err := p.Check(ctx, "sysuser", strings.Repeat("x", MaxInput)); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("input over 512 bytes: %v, want ErrMismatch", err)
	}
	if _, err := (&Program{Argv: []string{"/nonexistent/checkpw"}}).Check(ctx, "a", "b"); err == nil || errors.Is(err, auth.ErrMismatch) {
		t.Errorf("missing program: %v", err)
	}
	// A program that succeeds without running the next one sets no USER.
	if _, err := (&Program{Argv: []string{"/bin/true"}}).Check(ctx, "a", "b"); err == nil || errors.Is(err, auth.ErrMismatch) {
		t.Errorf("no USER: %v", err)
	}
}

// The helper process: with CHECKPW_ROOT set, the test binary is `mailctl
// checkpassword` for that root; its arguments are the next program.
func TestMain(m *testing.M) {
	if root := os.Getenv("CHECKPW_ROOT"); root != "" {
		os.Exit(Serve(config.Open(root), os.NewFile(3, "fd3"), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// serveRoot makes a root with ann@example.org, whose hash came from
// Dovecot's SHA512-CRYPT, and her mailbox directory.
func serveRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	out, err := exec.Command("doveadm", "-O", "pw", "-s", "SHA512-CRYPT", "-p", "sesame open").Output()
	if err != nil {
		t.Fatalf("doveadm: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	line := "ann@example.org:" + strings.TrimSpace(string(out)) + "\n"
	if err := os.WriteFile(filepath.Join(root, config.FileUsers), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "mail/example.org/ann"), 0o700); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestServeWithProgram runs Serve (as a helper process) through our own
// client: the right password runs /usr/bin/env with USER and HOME, the
// hash is upgraded, and a wrong one exits 1.
func TestServeWithProgram(t *testing.T) {
	root := serveRoot(t)
	t.Setenv("CHECKPW_ROOT", root)
	p := &Program{Argv: []string{os.Args[0]}, Timeout: 20 * time.Second}
	u, err := p.Check(context.Background(), "ann@example.org", "sesame open")
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if u.Addr.Key() != "ann@example.org" || u.Attrs["home"] != filepath.Join(root, "mail/example.org/ann") {
		t.Errorf("user %+v", u)
	}
	users, _, err := config.Open(root).LookupUser("ann@example.org")
	if err != nil || auth.NeedsUpgrade(users.Hash) {
		t.Errorf("hash after login %q, %v; want it upgraded", users.Hash, err)
	}
	if _, err := p.Check(context.Background(), "ann@example.org", "sesame shut"); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := p.Check(context.Background(), "bob@example.org", "sesame open"); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "run/throttle")); err == nil {
		t.Errorf("Serve throttled although its caller said it does")
	}
}

// TestServeShell drives Serve from bash as qmail-popup would: input on
// descriptor 3 from printf, the next program a shell that prints USER,
// HOME and its working directory; exit codes for each failure.
func TestServeShell(t *testing.T) {
	root := serveRoot(t)
	run := func(input string, next ...string) (string, int) {
		t.Helper()
		args := append([]string{"-c", `exec 3< <(printf "$1"); shift; exec "$@"`, "bash", input, os.Args[0]}, next...)
		cmd := exec.Command("bash", args...)
		cmd.Env = append(os.Environ(), "CHECKPW_ROOT="+root, "TCPREMOTEIP=192.0.2.4")
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	printer := []string{"/bin/sh", "-c", `echo "$USER $HOME $(pwd)"`}
	out, code := run(`ann@example.org\0sesame open\0<1.2@host>\0`, printer...)
	mbox := filepath.Join(root, "mail/example.org/ann")
	if code != 0 || strings.TrimSpace(out) != "ann@example.org "+mbox+" "+mbox {
		t.Errorf("right password: exit %d, output %q", code, out)
	}
	tests := []struct {
		name, input string
		next        []string
		want        int
	}{
		{"wrong password", `ann@example.org\0sesame\0ts\0`, printer, ExitBad},
		{"unknown user", `nobody@example.org\0sesame open\0ts\0`, printer, ExitBad},
		{"no next program", `ann@example.org\0sesame open\0ts\0`, nil, ExitMisuse},
		{"one field", `ann@example.org`, printer, ExitMisuse},
		{"empty user", `\0x\0ts\0`, printer, ExitMisuse},
		{"over 512 bytes", `ann@example.org\0` + strings.Repeat("x", 600) + `\0ts\0`, printer, ExitMisuse},
		{"next missing", `ann@example.org\0sesame open\0ts\0`, []string{"/nonexistent/prog"}, ExitTemp},
	}
	for _, tc := range tests {
		if out, code := run(tc.input, tc.next...); code != tc.want || strings.Contains(out, "ann@example.org") {
			t.Errorf("%s: exit %d, output %q; want exit %d", tc.name, code, out, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "run/throttle")); err != nil {
		t.Errorf("Serve under tcpserver did not count failures: %v", err)
	}
}
