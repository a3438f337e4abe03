// Package smtpd is the SMTP server of mailsrv (RFC 5321), built on
// github.com/emersion/go-smtp, which owns the wire protocol. This package
// decides: which recipients to accept (our users, aliases and catch-alls;
// no relaying for unauthenticated clients), what a message may contain
// (no bare CR or LF, bounded lines, size, recipients and hops), and when
// to answer 250 (only after the queue has the message durably).
//
// Extensions offered: PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
// SMTPUTF8 (RFC 6531), SIZE (RFC 1870), ENHANCEDSTATUSCODES (RFC 2034,
// RFC 3463), CHUNKING (RFC 3030), STARTTLS (RFC 3207) when a certificate
// is configured, AUTH (RFC 4954) when an Authenticator is.
//
// An authenticated client may relay, and must send as its user: the
// envelope sender and the From header are checked (submission.go). With
// Options.Submission the server is a message submission agent (RFC 6409)
// and wants AUTH before MAIL.
//
// A Server serves connections from a listener (one goroutine each) or a
// single connection, such as the one on stdin/stdout under tcpserver or
// inetd (ucspi.Stdio), in clear text with STARTTLS or in implicit TLS
// (RFC 8314, port 465).
package smtpd

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/daemon"
	"mailsrv/pkg/queue"
	"mailsrv/pkg/ucspi"
)

// Defaults of Options, in one place.
const (
	DefaultMaxSize       = 35 << 20 // octets of message data
	DefaultMaxRecipients = 100      // RFC 5321 section 4.5.3.1.8: at least 100
	DefaultMaxLine       = 1000     // octets with CRLF, RFC 5321 section 4.5.3.1.6
	DefaultTimeout       = 5 * time.Minute
	DefaultMaxHops       = 100 // Received headers, RFC 5321 section 6.3
	DefaultInjectTimeout = 10 * time.Minute
	DefaultMaxConns      = 200 // connections at once, with Serve
	DefaultMaxBadRcpts   = 20  // refused recipients before we hang up, as Postfix's smtpd_hard_error_limit
)

// Options configure a Server. Zero limits take the defaults above.
type Options struct {
	Config   *config.Config // recipients and local domains, re-read on change
	Injector queue.Injector // where accepted messages go
	// Hostname names this server in the greeting and in Received headers;
	// "" means the host name from Config (etc/me).
	Hostname      string
	MaxSize       int64
	MaxRecipients int
	MaxLine       int
	Timeout       time.Duration // idle time allowed between client reads
	MaxHops       int
	MaxConns      int           // connections served at once by Serve
	MaxBadRcpts   int           // refused recipients per connection before it is closed
	InjectTimeout time.Duration // how long the queue may take for one message
	SpoolDir      string        // for messages too big to hold in memory; "" is $TMPDIR
	Log           *slog.Logger  // nil: slog.Default()

	// TLS, when set, offers STARTTLS (RFC 3207) on clear-text connections;
	// with ImplicitTLS every connection starts with a TLS handshake
	// instead (RFC 8314 section 3.3, port 465).
	TLS         *tls.Config
	ImplicitTLS bool
	// Auth, when set, offers AUTH (RFC 4954). PLAIN and LOGIN only over
	// TLS, from loopback, or with AllowInsecureAuth (see pkg/sasl).
	Auth              *auth.Authenticator
	AllowInsecureAuth bool
	// Submission makes this a submission server (RFC 6409): AUTH is
	// required before MAIL, and Received leaves the client out.
	Submission bool
	// ReceivedIP keeps the client's name and address in the Received
	// header of submitted mail; by default they are left out.
	ReceivedIP bool
}

func (o *Options) setDefaults() error {
	if o.Config == nil || o.Injector == nil {
		return errors.New("smtpd: Options need a Config and an Injector")
	}
	if o.ImplicitTLS && o.TLS == nil {
		return errors.New("smtpd: implicit TLS needs a TLS configuration (a certificate)")
	}
	if o.Submission && o.Auth == nil {
		return errors.New("smtpd: submission needs an Authenticator")
	}
	// A wrong root would read as a host with no local domains, turning all
	// mail away for good: refuse to start instead.
	if fi, err := os.Stat(o.Config.Path("etc")); err != nil || !fi.IsDir() {
		return fmt.Errorf("smtpd: %s is not a mailsrv root (no etc/; run mailctl init)", o.Config.Root)
	}
	if o.Hostname == "" {
		h, err := o.Config.Hostname()
		if err != nil {
			return fmt.Errorf("smtpd: host name: %w", err)
		}
		o.Hostname = h
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = DefaultMaxRecipients
	}
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxHops <= 0 {
		o.MaxHops = DefaultMaxHops
	}
	if o.MaxBadRcpts <= 0 {
		o.MaxBadRcpts = DefaultMaxBadRcpts
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.InjectTimeout <= 0 {
		o.InjectTimeout = DefaultInjectTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

// Server is an SMTP server: the go-smtp server and our policy behind it.
type Server struct {
	opts Options
	smtp *smtp.Server
}

// New returns a Server for opts.
func New(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts}
	ss := smtp.NewServer(backend{s})
	ss.Domain = opts.Hostname
	ss.MaxMessageBytes = opts.MaxSize
	ss.MaxRecipients = opts.MaxRecipients
	// go-smtp counts octets as sent, a dot-stuffed line's extra dot
	// included, which RFC 5321 section 4.5.3.1.6 does not count; one
	// octet more lets such a line through, and lineFilter checks the exact
	// limit on the data without closing the connection.
	ss.MaxLineLength = opts.MaxLine + 1
	ss.ReadTimeout = opts.Timeout
	ss.WriteTimeout = opts.Timeout
	ss.EnableSMTPUTF8 = true
	ss.ErrorLog = daemon.LibLog{Log: opts.Log}
	if !opts.ImplicitTLS {
		ss.TLSConfig = opts.TLS // STARTTLS is offered when set
	}
	// go-smtp would offer AUTH only over TLS; pkg/sasl decides instead
	// (Session.AuthMechanisms), which also allows loopback clients.
	ss.AllowInsecureAuth = true
	s.smtp = ss
	return s, nil
}

// Serve accepts connections on l, each in its own goroutine, until l is
// closed or Close is called.
func (s *Server) Serve(l net.Listener) error {
	var tl net.Listener = &trackingListener{Listener: l, srv: s, slots: make(chan struct{}, s.opts.MaxConns)}
	if s.opts.ImplicitTLS {
		// go-smtp makes the handshake, under the timeouts, before the
		// greeting.
		tl = tls.NewListener(tl, s.opts.TLS)
	}
	err := s.smtp.Serve(tl)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ServeConn serves one connection and returns when it is over.
func (s *Server) ServeConn(c net.Conn) error {
	return s.Serve(ucspi.NewSingleListener(c))
}

// Close closes the listeners and every open connection.
func (s *Server) Close() error {
	err := s.smtp.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// backend makes a Session for each connection that says EHLO or HELO.
type backend struct{ srv *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return newSession(b.srv, c), nil
}

// trackingListener wraps each accepted connection in a clientConn, which
// logs its opening and closing, and turns away connections beyond
// MaxConns.
type trackingListener struct {
	net.Listener
	srv   *Server
	slots chan struct{} // one token per connection being served
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
		default:
			go l.srv.refuse(c)
			continue
		}
		cc := &clientConn{Conn: c, id: newID(), ip: remoteIP(c.RemoteAddr()), start: time.Now(),
			release: func() { <-l.slots }, closed: make(chan struct{})}
		// Lines matter only until TLS starts (see Read and Write).
		cc.tls = l.srv.opts.ImplicitTLS
		cc.br = bufio.NewReaderSize(c, lineReadBuf)
		cc.log = l.srv.opts.Log.With("conn", cc.id)
		cc.log.Info("connect", "client", cc.ip)
		return cc, nil
	}
}

// refuse turns a connection away with 421 (RFC 5321 section 3.8).
func (s *Server) refuse(c net.Conn) {
	s.opts.Log.Warn("too many connections", "client", remoteIP(c.RemoteAddr()), "max", s.opts.MaxConns)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = fmt.Fprintf(c, "421 4.7.0 %s Too many connections, try again later\r\n", s.opts.Hostname)
	if err := c.Close(); err != nil {
		s.opts.Log.Warn("closing refused connection", "err", err)
	}
}

// clientConn is one client's connection, with what is logged about it.
type clientConn struct {
	net.Conn
	id    string       // connection id, in every log line of this connection
	ip    string       // the client's IP address, "" for a local pipe
	start time.Time    // when it was accepted
	log   *slog.Logger // carries id
	msgs  atomic.Int64 // messages accepted
	once  sync.Once
	br    *bufio.Reader // see Read
	// tls is set once the bytes read are TLS records (implicit TLS, or
	// after STARTTLS): Read stops splitting them into lines.
	tls bool
	// release frees the connection's slot; nil when there is none
	release func()
	// closed is closed with the connection; it ends a throttle delay
	// when the server shuts down. nil when not made by Accept.
	closed chan struct{}
}

// lineReadBuf is the read buffer of a clientConn.
const lineReadBuf = 4096

// Read returns at most one line (up to and including LF) per call. go-smtp
// counts line length on the octets it reads from the connection and turns
// the count off only while it copies a BDAT chunk; were the chunk read
// ahead together with the BDAT command, its octets would count as part of
// the command line. Handing out one line at a time keeps them apart.
func (c *clientConn) Read(p []byte) (int, error) {
	if c.br == nil {
		return c.Conn.Read(p)
	}
	if c.tls {
		return c.br.Read(p)
	}
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			return 0, err
		}
	}
	b, err := c.br.Peek(c.br.Buffered())
	if err != nil {
		return 0, err
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	n := copy(p, b)
	_, err = c.br.Discard(n)
	return n, err
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.closed != nil {
			close(c.closed)
		}
		c.log.Info("disconnect", "client", c.ip, "messages", c.msgs.Load(),
			"duration", time.Since(c.start).Round(time.Millisecond))
		if c.release != nil {
			c.release()
		}
	})
	return err
}

// remoteIP returns the IP address of a TCP peer, "" otherwise.
func remoteIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return ""
}

// newID returns a short random identifier for logs and Received headers.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
