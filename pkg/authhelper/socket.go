package authhelper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// SocketBackend checks passwords through the service on the Unix socket
// Path (imapd's and pop3d's side), one connection per check: it costs
// about 0.1 ms (BenchmarkSocketLookup: 0.11 ms a look-up on a new
// connection, 0.025 on a kept one) against an argon2 check of 60-130 ms,
// and leaves nothing to pool or to break between logins. Local must be
// set. When the service is not there (no
// socket, a stale one, or it closes the connection before answering: it
// refused this process's account), the password is checked by Local, in
// this process, as without the service; that is logged once. A service
// that does not answer within Timeout is a fault of the server (the login
// fails as temporary, not checked twice).
//
// Only passwords go through the socket: SCRAM-SHA-256 reads the keys of
// etc/users in this process (auth.UsersFile), its cost is not argon2's.
type SocketBackend struct {
	Path    string
	Local   auth.Backend  // the check when the service is not there
	Timeout time.Duration // 0: Timeout
	Log     *slog.Logger  // nil: slog.Default()

	once sync.Once
}

// UsersFile implements auth.UsersFile: the service checks etc/users.
func (*SocketBackend) UsersFile() {}

// Check implements auth.Backend.
func (b *SocketBackend) Check(ctx context.Context, username, password string) (config.User, error) {
	u, err := b.remote(ctx, username, password)
	var absent *absentError
	if !errors.As(err, &absent) {
		return u, err
	}
	b.once.Do(func() {
		log := b.Log
		if log == nil {
			log = slog.Default()
		}
		level := slog.LevelWarn
		if errors.Is(absent.err, syscall.ENOENT) {
			level = slog.LevelDebug // no service installed: a choice, not a fault
		}
		log.Log(ctx, level, "auth service not available: checking passwords in this process",
			"socket", b.Path, "err", absent.err)
	})
	return b.Local.Check(ctx, username, password)
}

// absentError is a service that is not there to ask.
type absentError struct{ err error }

func (e *absentError) Error() string { return "auth service: " + e.err.Error() }

func (b *SocketBackend) remote(ctx context.Context, username, password string) (config.User, error) {
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = Timeout
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", b.Path)
	if err != nil {
		if ctx.Err() != nil {
			return config.User{}, ctx.Err()
		}
		return config.User{}, &absentError{err}
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return config.User{}, errors.Join(err, conn.Close())
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	u, err := NewClient(conn, conn).Check(ctx, username, password)
	if cerr := conn.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("auth service: %w", cerr)
	}
	switch {
	case err == nil || errors.Is(err, auth.ErrMismatch):
		return u, err
	case ctx.Err() != nil:
		return config.User{}, ctx.Err()
	case closedEarly(err):
		return config.User{}, &absentError{err}
	}
	return config.User{}, err
}

// closedEarly reports whether the service closed the connection without an
// answer: it refused the peer (or is stopping).
func closedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
