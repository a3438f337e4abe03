package sasl

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// mbsync (isync) logs in over IMAP with Cyrus SASL's SCRAM-SHA-256, a
// client written in C that we did not write and that checks the server's
// signature. It talks through "Tunnel" to this test binary, which then
// plays a minimal IMAP server (RFC 9051 AUTHENTICATE only) on stdin and
// stdout and writes the outcome to SASL_HELPER_RESULT.

func TestMain(m *testing.M) {
	if root := os.Getenv("SASL_HELPER_ROOT"); root != "" {
		os.Exit(imapHelper(root, os.Getenv("SASL_HELPER_RESULT")))
	}
	os.Exit(m.Run())
}

func imapHelper(root, resultPath string) int {
	a := &auth.Authenticator{Config: config.Open(root),
		Sleep: func(context.Context, time.Duration) error { return nil }}
	s := &Server{Auth: a, Service: "imap-test"} // a pipe: no address, no TLS
	r, w := bufio.NewReader(os.Stdin), bufio.NewWriter(os.Stdout)
	send := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\r\n", args...)
		_ = w.Flush()
	}
	result := "no AUTHENTICATE"
	defer func() { _ = os.WriteFile(resultPath, []byte(result), 0o600) }()
	caps := "IMAP4rev1 AUTH=" + strings.Join(s.Mechanisms(), " AUTH=")
	send("* OK [CAPABILITY %s] test server ready", caps)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		switch {
		case cmd == "CAPABILITY":
			send("* CAPABILITY %s", caps)
			send("%s OK done", tag)
		case cmd == "AUTHENTICATE" && len(f) >= 3:
			result = imapAuthenticate(s, f[2], tag, r, send)
		case cmd == "LOGOUT":
			send("* BYE")
			send("%s OK bye", tag)
			return 0
		default:
			send("%s NO [UNAVAILABLE] this test server only authenticates", tag)
		}
	}
}

func imapAuthenticate(s *Server, mech, tag string, r *bufio.Reader, send func(string, ...any)) string {
	m, err := s.Start(mech)
	if err != nil {
		send("%s NO %v", tag, err)
		return "start: " + err.Error()
	}
	var resp []byte
	for {
		ch, done, err := m.Next(resp)
		if err != nil {
			send("%s NO [AUTHENTICATIONFAILED] failed", tag)
			return "fail: " + err.Error()
		}
		if done {
			u, _ := s.User()
			send("%s OK authenticated", tag)
			return "ok " + u.Addr.Key()
		}
		send("+ %s", base64.StdEncoding.EncodeToString(ch))
		line, err := r.ReadString('\n')
		if err != nil {
			return "eof"
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "*" {
			Cancel(m)
			send("%s BAD cancelled", tag)
			return "cancelled"
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			send("%s BAD base64", tag)
			return "bad base64"
		}
	}
}

func runMbsync(t *testing.T, root, password string) string {
	t.Helper()
	dir := t.TempDir()
	result := filepath.Join(dir, "result")
	conf := fmt.Sprintf(`IMAPAccount test
Tunnel "%s -test.run=^$"
User ann@example.org
Pass "%s"
AuthMechs SCRAM-SHA-256
SSLType None

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel c
Far :remote:
Near :local:
Patterns INBOX
`, os.Args[0], password, dir, dir)
	confPath := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mbsync", "-c", confPath, "c")
	cmd.Env = append(os.Environ(), "SASL_HELPER_ROOT="+root, "SASL_HELPER_RESULT="+result)
	out, _ := cmd.CombinedOutput() // fails after login: the server serves nothing
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("no result from the helper: %v\nmbsync said:\n%s", err, out)
	}
	t.Logf("mbsync said:\n%s", out)
	return string(b)
}

func TestMbsyncScram(t *testing.T) {
	a := newAuth(t)
	if got := runMbsync(t, a.Config.Root, testPassword); got != "ok ann@example.org" {
		t.Errorf("right password: %q, want ok", got)
	}
	if got := runMbsync(t, a.Config.Root, "not the password"); !strings.HasPrefix(got, "fail: ") || !strings.Contains(got, "does not match") {
		t.Errorf("wrong password: %q, want a failure", got)
	}
}
