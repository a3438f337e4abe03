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
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/imap/wire"
)

// Defaults, in one place.
const (
	// DefaultIdleTimeout: RFC 3501 section 5.4 asks for at least 30
	// minutes; clients re-issue IDLE every 29 (RFC 2177).
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultPollInterval is how often a session in IDLE looks for changes
	// made by other processes.
	DefaultPollInterval = 2 * time.Second
	// DefaultMaxBad is how many bad commands in a row end a session.
	DefaultMaxBad = 10
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
	MaxBad            int           // zero: DefaultMaxBad
	AllowInsecureAuth bool          // accept passwords in clear from non-loopback peers
	// TLSConfig is the hook for STARTTLS and implicit TLS (a later issue):
	// while nil, STARTTLS is not offered.
	TLSConfig *tls.Config
	Hostname  string // in the greeting; "" for etc/me
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
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic", "err", r, "stack", string(debug.Stack()))
		}
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
			log.Debug("close", "err", err)
		}
	}()
	lim := s.limits()
	sess := &session{
		srv: s, conn: c, log: log, lim: lim,
		idle:   orDefault(s.IdleTimeout, DefaultIdleTimeout),
		poll:   orDefault(s.PollInterval, DefaultPollInterval),
		maxBad: orDefault(s.MaxBad, DefaultMaxBad),
		r:      wire.NewReader(c, lim),
		w:      wire.NewWriter(c),
	}
	sess.r.SetMaxLiteral(min(lim.MaxLiteral, preauthLiteral))
	sess.r.Continue = func() error {
		sess.w.Raw("+ Ready for literal data\r\n")
		return sess.flush()
	}
	log.Debug("connect")
	err := sess.run(ctx)
	if err != nil && !errors.Is(err, io.EOF) {
		log.Info("session ended", "err", err)
	}
}

// insecureAuthRefused reports whether a password may not be sent on this
// connection: it is not encrypted, the peer is not on loopback, and the
// administrator did not allow it (RFC 3501 section 6.2.3, LOGINDISABLED).
func (s *session) insecureAuthRefused() bool {
	if s.tls || s.srv.AllowInsecureAuth {
		return false
	}
	host := s.conn.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// capabilities lists what this session offers (RFC 3501 section 7.2.1).
func (s *session) capabilities() string {
	caps := []string{"IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE",
		"UNSELECT", "UIDPLUS", "MOVE", "ESEARCH", "SEARCHRES", "SPECIAL-USE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "QUOTA", "QUOTA=RES-STORAGE", "SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "BINARY", "STATUS=SIZE",
		"APPENDLIMIT=" + strconv.FormatInt(s.lim.MaxLiteral, 10)}
	if s.state == stateNotAuth {
		if s.insecureAuthRefused() {
			caps = append(caps, "LOGINDISABLED")
		} else {
			caps = append(caps, "AUTH=PLAIN")
		}
		if s.srv.TLSConfig != nil && !s.tls {
			caps = append(caps, "STARTTLS")
		}
	}
	return strings.Join(caps, " ")
}
