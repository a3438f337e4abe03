// Package pop3 is the POP3 server of mailsrv: RFC 1939 (POP3), RFC 2449
// (CAPA, response codes, EXPIRE, LOGIN-DELAY), RFC 3206 (SYS and AUTH
// response codes), RFC 5034 (AUTH with SASL PLAIN and LOGIN) and RFC 2595
// (STLS), over the Maildir++ INBOX that imapd serves and deliver fills.
//
// wire.go and message.go are the codec (command lines, replies, byte-stuffed
// messages); session.go and the cmd_*.go files decide what to do;
// mailbox.go owns the session's snapshot of the Maildir and the UPDATE
// state; lock.go is the one-session-per-mailbox lock shared across
// processes and hosts.
package pop3

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// Defaults, kept in one place.
const (
	// DefaultIdleTimeout is the autologout timer of RFC 1939 section 3,
	// which must be at least 10 minutes.
	DefaultIdleTimeout = 10 * time.Minute
	// MaxBadCommands in a row end the session.
	MaxBadCommands = 10
	// MaxAuthFailures end the session.
	MaxAuthFailures = 3
	// DefaultMaxConnections is the default of Server.MaxConnections.
	DefaultMaxConnections = 500
)

// Server holds what every session shares. Set the fields before the first
// call to Serve and do not change them afterwards.
type Server struct {
	Config *config.Config
	// BeforeOpen, when set, runs after a login and before the mailbox is
	// opened: pop3d serving system accounts as root drops to the
	// mailbox's owner there (privsep.DropToOwner). An error refuses the
	// login.
	BeforeOpen func(u config.User, mailbox string) error
	Log        *slog.Logger // nil means slog.Default()
	// Auth checks passwords (pkg/auth: throttling, hash upgrades, the
	// auth log line). Nil means etc/users of Config, without throttling.
	Auth *auth.Authenticator

	// IdleTimeout closes a session that sends nothing for so long; it is
	// DefaultIdleTimeout if zero.
	IdleTimeout time.Duration
	// AllowInsecureAuth permits USER/PASS and AUTH on a connection that is
	// neither TLS nor from a loopback address.
	AllowInsecureAuth bool
	// TLSConfig, when set, enables STLS (RFC 2595 section 4), and is the
	// configuration of ImplicitTLS.
	TLSConfig *tls.Config
	// ImplicitTLS makes every connection begin with a TLS handshake
	// (POP3S, port 995, RFC 8314 section 3.3). It needs TLSConfig.
	ImplicitTLS bool
	// Expire is the EXPIRE capability's value (RFC 2449 section 6.7):
	// "NEVER" or a number of days; empty means it is not advertised. The
	// server only announces the policy: removing old mail is the job of
	// whatever the administrator runs for it.
	Expire string
	// LoginDelay is the least time between two logins to one mailbox
	// (RFC 2449 section 6.8); zero disables it.
	LoginDelay time.Duration
	// Implementation is the IMPLEMENTATION capability's value.
	Implementation string
	// MaxConnections bounds the sessions served at once by this Server
	// (--listen mode); more are answered -ERR [SYS/TEMP] and closed.
	// DefaultMaxConnections if zero.
	MaxConnections int

	conns    atomic.Uint64 // connections so far, for ids
	active   atomic.Int64  // sessions being served
	authOnce sync.Once
}

func (s *Server) authenticator() *auth.Authenticator {
	s.authOnce.Do(func() {
		if s.Auth == nil {
			s.Auth = &auth.Authenticator{Config: s.Config, Logger: s.log()}
		}
	})
	return s.Auth
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Server) idle() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

// Serve runs one POP3 session on c and closes it. When ctx ends the session
// is cut off as a dropped connection is: nothing is deleted. A panic is
// logged with its stack and ends only this session.
func (s *Server) Serve(ctx context.Context, c net.Conn) {
	id := strconv.FormatUint(s.conns.Add(1), 10)
	log := s.log().With("conn", id, "remote", c.RemoteAddr().String())
	defer s.active.Add(-1)
	if max := s.MaxConnections; s.active.Add(1) > int64(cmp.Or(max, DefaultMaxConnections)) {
		log.Warn("too many connections")
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("-ERR [SYS/TEMP] too many connections, try later\r\n"))
		_ = c.Close()
		return
	}
	if s.ImplicitTLS {
		tc := tls.Server(c, s.TLSConfig)
		_ = tc.SetDeadline(time.Now().Add(time.Minute))
		if err := tc.Handshake(); err != nil {
			log.Info("TLS handshake failed", "err", err)
			_ = c.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	sess := newSession(ctx, s, c, log)
	// On shutdown: set the flag, then the deadline; the session sets its
	// own deadline, then checks the flag. Either way it stops waiting.
	stop := context.AfterFunc(ctx, func() {
		sess.shutdown.Store(true)
		_ = c.SetDeadline(time.Now())
	})
	defer func() {
		stop()
		if r := recover(); r != nil {
			log.Error("session panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		sess.close()
	}()
	sess.run()
}
