package sasl

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// elsewhere checks passwords of etc/users somewhere else, as the auth
// service's client does (auth.UsersFile), and counts the checks.
type elsewhere struct {
	users auth.UsersBackend
	n     *atomic.Int32
}

func (e elsewhere) UsersFile() {}

func (e elsewhere) Check(ctx context.Context, user, pass string) (config.User, error) {
	e.n.Add(1)
	return e.users.Check(ctx, user, pass)
}

// With a Backend that checks etc/users elsewhere, SCRAM-SHA-256 is still
// offered and done here (Python's client accepts the server's signature,
// the Backend is not asked), and PLAIN goes to the Backend.
func TestScramWithUsersFileBackend(t *testing.T) {
	a := newAuth(t)
	var n atomic.Int32
	a.Backend = elsewhere{users: auth.UsersBackend{Config: a.Config}, n: &n}
	s := &Server{Auth: a, RemoteIP: loopback, Service: "test"}
	if got := s.Mechanisms(); !slices.Equal(got, []string{ScramSHA256, Plain, Login}) {
		t.Fatalf("Mechanisms() = %v", got)
	}
	m, err := s.Start(ScramSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err, pyOK := runPythonScram(t, m, "ann@example.org", testPassword); err != nil || !pyOK {
		t.Fatalf("SCRAM: %v, client accepted server: %v", err, pyOK)
	}
	if n.Load() != 0 {
		t.Errorf("SCRAM asked the Backend %d times", n.Load())
	}
	m, _ = s.Start(Plain)
	if _, err := exchange(m, []byte("\x00ann@example.org\x00"+testPassword)); err != nil || n.Load() != 1 {
		t.Fatalf("PLAIN: %v, Backend asked %d times, want once", err, n.Load())
	}
}
