package imap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/sasl"
)

// Defaults, in one place.
const (
	// DefaultIdleTimeout: RFC 3501 section 5.4 asks for at least 30
	// minutes; clients re-issue IDLE every 29 (RFC 2177).
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultPollInterval is how often a session in IDLE looks for changes
	// made by other processes.
	DefaultPollInterval = 2 * time.Second
	// DefaultWatchPollInterval is how often a session in IDLE still looks
	// when inotify tells it of changes: for those inotify does not see
	// (another NFS host).
	DefaultWatchPollInterval = 30 * time.Second
	// DefaultMaxBad is how many bad commands in a row end a session.
	DefaultMaxBad = 10
	// handshakeTimeout bounds a TLS handshake (implicit TLS or STARTTLS).
	handshakeTimeout = time.Minute
	// preauthLiteral bounds literals before login, so that an
	// unauthenticated client cannot make the server buffer much.
	preauthLiteral = 8 * 1024
)

// Server holds what every session shares.
type Server struct {
	Config            *config.Config
	Log               *slog.Logger
	Limits            wire.Limits   // zero: wire.DefaultLimits
	IdleTimeout       time.Duration // zero: DefaultIdleTimeout
	PollInterval      time.Duration // zero: DefaultPollInterval
	WatchPollInterval time.Duration // zero: DefaultWatchPollInterval
	NoWatch           bool          // IDLE polls, without inotify
	MaxBad            int           // zero: DefaultMaxBad
	AllowInsecureAuth bool          // accept passwords in clear from non-loopback peers
	// Auth checks passwords (pkg/auth: throttling, hash upgrades, the
	// auth log line). Nil means etc/users of Config, without throttling.
	Auth *auth.Authenticator
	// TLSConfig, when set, enables STARTTLS (RFC 3501 section 6.2.1) and
	// is the configuration of ImplicitTLS; while nil, STARTTLS is not
	// offered.
	TLSConfig *tls.Config
	// ImplicitTLS makes every connection begin with a TLS handshake
	// (IMAPS, port 993, RFC 8314 section 3.3). It needs TLSConfig.
	ImplicitTLS bool
	Hostname    string // in the greeting; "" for etc/me
	// BeforeOpen, when set, runs after a login and before the mailbox is
	// opened: imapd serving system accounts as root drops to the
	// mailbox's owner there (privsep.DropToOwner). An error refuses the
	// login.
	BeforeOpen func(u config.User, mailbox string) error

	authOnce sync.Once
	hub      watchHub // the inotify instance of IDLE (watch.go)
	idleHook func()   // tests: called before each IDLE rescan
}

func (s *Server) authenticator() *auth.Authenticator {
	s.authOnce.Do(func() {
		if s.Auth == nil {
			s.Auth = &auth.Authenticator{Config: s.Config, Logger: s.Log}
		}
	})
	return s.Auth
}

func (s *Server) limits() wire.Limits {
	if s.Limits.MaxLine == 0 {
		return wire.DefaultLimits
	}
	return s.Limits
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Serve runs one session on c and closes it. A panic in the session is
// logged with its stack, and only this connection ends.
func (s *Server) Serve(ctx context.Context, c net.Conn) {
	var idb [4]byte
	_, _ = rand.Read(idb[:])
	log := orDefault(s.Log, slog.Default()).With("conn", hex.EncodeToString(idb[:]),
		"remote", c.RemoteAddr().String())
	var sess *session
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic", "err", r, "stack", string(debug.Stack()))
		}
		if sess != nil {
			c = sess.conn // after STARTTLS: close TLS too (close_notify)
		}
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
			log.Debug("close", "err", err)
		}
	}()
	if s.ImplicitTLS {
		tc, err := handshake(ctx, c, s.TLSConfig)
		if err != nil {
			log.Info("TLS handshake failed", "err", err)
			return
		}
		c = tc
	}
	_, secure := c.(*tls.Conn)
	lim := s.limits()
	sess = &session{
		srv: s, conn: c, log: log, lim: lim, tls: secure,
		idle:   orDefault(s.IdleTimeout, DefaultIdleTimeout),
		poll:   orDefault(s.PollInterval, DefaultPollInterval),
		maxBad: orDefault(s.MaxBad, DefaultMaxBad),
		r:      wire.NewReader(c, lim),
		w:      wire.NewWriter(c),
	}
	sess.watchPoll = orDefault(s.WatchPollInterval, DefaultWatchPollInterval)
	sess.r.SetMaxLiteral(min(lim.MaxLiteral, preauthLiteral))
	sess.r.Continue = func() error {
		sess.w.Raw("+ Ready for literal data\r\n")
		return sess.flush()
	}
	sess.sasl = &sasl.Server{
		Auth: s.authenticator(), Service: "imapd", RemoteIP: remoteIP(c),
		TLS: secure, Insecure: s.AllowInsecureAuth, Ctx: ctx,
	}
	log.Debug("connect", "tls", secure)
	err := sess.run(ctx)
	if err != nil && !errors.Is(err, io.EOF) {
		log.Info("session ended", "err", err)
	}
}

// handshake runs the server side of a TLS handshake on c, bounded in
// time and ended by shutdown (ctx); the deadline is cleared afterwards
// (the session sets its own).
func handshake(ctx context.Context, c net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if cfg == nil {
		return nil, errors.New("no TLS configuration")
	}
	tc := tls.Server(c, cfg)
	if err := c.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, c.SetDeadline(time.Time{})
}

// remoteIP is the client's address, the zero Addr if it is not an IP
// address (then passwords count against the account only).
func remoteIP(c net.Conn) netip.Addr {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// insecureAuthRefused reports whether a password may not be sent on this
// connection: it is not encrypted, the peer is not on loopback, and the
// administrator did not allow it (RFC 3501 section 6.2.3, LOGINDISABLED).
// sasl.PlaintextAllowed is the rule every daemon shares.
func (s *session) insecureAuthRefused() bool {
	return !sasl.PlaintextAllowed(s.sasl.TLS, s.sasl.RemoteIP, s.sasl.Insecure)
}

// capabilities lists what this session offers (RFC 3501 section 7.2.1).
// Before login: LOGINDISABLED where a password may not be sent in clear,
// the SASL mechanisms allowed on this connection (RFC 4422; SCRAM-SHA-256
// always, PLAIN and LOGIN only where a password may be sent), and
// STARTTLS until TLS is on.
func (s *session) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
		"UNSELECT", "UIDPLUS", "MOVE", "ESEARCH", "SEARCHRES", "SPECIAL-USE", "CREATE-SPECIAL-USE", "UTF8=ACCEPT", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "QUOTA", "QUOTA=RES-STORAGE", "SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "BINARY", "STATUS=SIZE", "CONDSTORE", "QRESYNC",
		"APPENDLIMIT=" + strconv.FormatInt(s.lim.MaxLiteral, 10)}
	if s.state == stateNotAuth {
		if s.insecureAuthRefused() {
			caps = append(caps, "LOGINDISABLED")
		}
		for _, m := range s.sasl.Mechanisms() {
			caps = append(caps, "AUTH="+m)
		}
		if s.srv.TLSConfig != nil && !s.tls {
			caps = append(caps, "STARTTLS")
		}
	}
	return strings.Join(caps, " ")
}
