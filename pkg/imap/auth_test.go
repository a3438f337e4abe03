package imap

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
)

// brokenBackend fails as an unreadable etc/users would.
type brokenBackend struct{}

func (brokenBackend) Check(context.Context, string, string) (config.User, error) {
	return config.User{}, errors.New("etc/users: input/output error")
}

// A fault of the server is NO [UNAVAILABLE], not a wrong password, and
// does not count towards the failures that end the session.
func TestLoginServerFault(t *testing.T) {
	cfg, _ := testRoot(t)
	addr := testServer(t, cfg, func(s *Server) {
		s.Auth = &auth.Authenticator{Config: cfg, Backend: brokenBackend{}, Logger: s.Log}
	})
	cl := dial(t, addr)
	for i := range 4 {
		tag := string(rune('a' + i))
		cl.send(tag + " LOGIN demo@example.test \"" + testPassword + "\"\r\n")
		if got := cl.line(); got != tag+" NO [UNAVAILABLE] authentication temporarily unavailable\r\n" {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
}

// During a lockout, the right password and a wrong one get the same NO
// [UNAVAILABLE]; those refusals count as failures, so the third ends the
// session.
func TestLoginThrottled(t *testing.T) {
	cfg, _ := testRoot(t)
	th := throttle.New(filepath.Join(cfg.Root, throttle.Dir))
	th.IP = throttle.Policy{LockAfter: 1, Lockout: 1 << 40, Window: 1 << 40}
	th.Account = throttle.Policy{}
	addr := testServer(t, cfg, func(s *Server) {
		s.Auth = &auth.Authenticator{Config: cfg, Throttle: th, Logger: s.Log}
	})
	cl := dial(t, addr)
	var got []string
	for i, pw := range []string{"wrong", "wrong", testPassword} {
		tag := string(rune('a' + i))
		cl.send(tag + " LOGIN demo@example.test \"" + pw + "\"\r\n")
		got = append(got, strings.TrimPrefix(cl.until(tag), "* BYE too many failed logins\r\n")[2:])
	}
	if got[0] != "NO [AUTHENTICATIONFAILED] invalid credentials\r\n" {
		t.Errorf("before the lockout: %q", got[0])
	}
	if !strings.HasPrefix(got[1], "NO [UNAVAILABLE] ") || got[2] != got[1] {
		t.Errorf("locked out: wrong %q, right %q", got[1], got[2])
	}
	if rest, err := io.ReadAll(cl.br); err != nil || len(rest) > 0 {
		t.Errorf("session not closed after three failures: %q %v", rest, err)
	}
}
