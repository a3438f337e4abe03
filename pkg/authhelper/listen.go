package authhelper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
)

// The helper as a service (`mailctl auth-helper --listen PATH`): one
// long-lived process answers the same requests on a Unix socket, for
// imapd and pop3d, many connections at once (a goroutine each, requests
// on one connection answered in order). Its reason to exist is argon2's
// memory: a process per connection (tcpserver, inetd) that verified a
// hash itself faulted in 64 MiB afresh at every login, where this process
// keeps it resident (KeepArgonMemory).
//
// Whoever can connect can try passwords without the throttle of the
// daemons (which stays on their side), so only root and this process's
// own account may: the peer's uid is read from the socket (SO_PEERCRED,
// unix(7)), any other is logged and closed. The socket itself is made
// mode 0600.

// SocketName is the service's socket under a mailsrv root, where imapd
// and pop3d look for it by default.
const SocketName = "run/auth.sock"

// ErrRunning is Listen's error when a helper already answers on the
// socket.
var ErrRunning = errors.New("an auth helper is already running on this socket")

// Limits of the service, defaults of SocketServer's fields.
const (
	DefaultMaxConns    = 256
	DefaultIdleTimeout = 5 * time.Minute
)

// Listen opens the socket at path, mode 0600, owned by owner when it is
// set (the account the caller drops to afterwards; the caller must be
// root). A socket file left by a helper that ended is removed first; if
// something still answers on it, Listen fails with ErrRunning, and a file
// there that is not a socket is left alone (an error too).
func Listen(path string, owner *privsep.Account) (*net.UnixListener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// The umask makes the socket 0600 from its creation: no moment when
	// another account could connect. It is the process's, and this runs at
	// start-up, before anything else creates files.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("auth socket: %w", err)
	}
	if owner != nil {
		if err := os.Chown(path, owner.UID, owner.GID); err != nil {
			return nil, errors.Join(fmt.Errorf("auth socket: %w", err), ln.Close())
		}
	}
	return ln, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("auth socket: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err == nil {
		return errors.Join(fmt.Errorf("%s: %w", path, ErrRunning), c.Close())
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("auth socket: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("auth socket: remove stale: %w", err)
	}
	return nil
}

// SocketServer serves the protocol of Serve on a Unix socket.
type SocketServer struct {
	Config *config.Config
	Log    *slog.Logger
	// MaxConns bounds the connections served at once (0: DefaultMaxConns);
	// one more is logged and closed.
	MaxConns int
	// IdleTimeout closes a connection that sends no request for so long
	// (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
}

// Serve accepts connections on ln until ctx ends, then closes ln and the
// connections and waits for their goroutines.
func (s *SocketServer) Serve(ctx context.Context, ln *net.UnixListener) error {
	maxConns, idle := s.MaxConns, s.IdleTimeout
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			s.Log.Warn("auth socket accept", "err", err)
			time.Sleep(100 * time.Millisecond) // EMFILE and the like: let it pass
			continue
		}
		log, ok := s.admit(conn)
		if !ok {
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			log.Warn("auth socket: too many connections, closed", "max", maxConns)
			_ = conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.serveConn(ctx, conn, idle, log)
		}()
	}
}

// admit checks the peer's account: root or this process's own. It
// returns the connection's logger, or closes it.
func (s *SocketServer) admit(conn *net.UnixConn) (*slog.Logger, bool) {
	cred, err := PeerCred(conn)
	if err != nil {
		s.Log.Warn("auth socket: peer unknown, closed", "err", err)
		_ = conn.Close()
		return nil, false
	}
	log := s.Log.With("peer_uid", cred.Uid, "peer_pid", cred.Pid)
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		log.Warn("auth socket: peer refused (only root and this account may connect)")
		_ = conn.Close()
		return nil, false
	}
	return log, true
}

// PeerCred returns the credentials of the process at the other end of
// conn, as the kernel recorded them at connect (SO_PEERCRED).
func PeerCred(conn *net.UnixConn) (*syscall.Ucred, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return cred, nil
}

func (s *SocketServer) serveConn(ctx context.Context, conn *net.UnixConn, idle time.Duration, log *slog.Logger) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	err := Serve(idleReader{conn, idle}, conn, s.Config, log)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Debug("auth socket: idle connection closed")
	default:
		log.Warn("auth socket: connection closed", "err", err)
	}
	if err := conn.Close(); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		log.Warn("auth socket: close", "err", err)
	}
}

// idleReader gives every read of a connection the idle timeout, and the
// answer written after it the same deadline: a peer that sends requests
// and never reads the answers does not hold its goroutine (and one of
// MaxConns) for good once the socket's buffer is full.
type idleReader struct {
	conn *net.UnixConn
	idle time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	if err := r.conn.SetDeadline(time.Now().Add(r.idle)); err != nil {
		return 0, err
	}
	return r.conn.Read(p)
}
