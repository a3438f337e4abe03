package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
	"mailsrv/pkg/queue"
	"mailsrv/pkg/sasl"
)

// Session is one client connection, from EHLO/HELO to QUIT; go-smtp calls
// one method per verb. A transaction (MAIL, RCPT..., DATA or BDAT) is
// cleared by Reset.
type Session struct {
	srv  *Server
	conn *smtp.Conn   // go-smtp's side: HELO name, TLS state, the socket
	cc   *clientConn  // our side: connection id, client IP, counters
	log  *slog.Logger // carries the connection id

	// authUser is the authenticated user's address, "" until AUTH
	// succeeds; user is that user's line of etc/users. Only an
	// authenticated client may relay (send to other domains).
	authUser string
	user     config.User
	sasl     *sasl.Server   // nil when AUTH is not offered
	mech     sasl.Mechanism // the AUTH exchange in progress, if any
	// ctx ends when the connection does, cutting a throttle delay short.
	ctx    context.Context
	cancel context.CancelFunc

	// The transaction in progress.
	inTransaction bool              // MAIL was accepted
	from          address.Address   // reverse-path; zero value is <>
	utf8          bool              // MAIL ... SMTPUTF8
	rcpts         []queue.Recipient // accepted recipients, without duplicates
	seen          map[string]bool   // keys of rcpts

	badRcpts int // recipients refused on this connection
}

func newSession(srv *Server, c *smtp.Conn) *Session {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok { // implicit TLS: a TLS listener over ours
		nc = tc.NetConn()
	}
	cc, ok := nc.(*clientConn)
	if !ok { // not through Serve's listener: log what we can
		cc = &clientConn{Conn: c.Conn(), id: newID(), ip: remoteIP(c.Conn().RemoteAddr()), start: time.Now()}
		cc.log = srv.opts.Log.With("conn", cc.id)
	}
	s := &Session{srv: srv, conn: c, cc: cc, log: cc.log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cc.closed != nil {
		go func() {
			select {
			case <-cc.closed:
				s.cancel()
			case <-s.ctx.Done():
			}
		}()
	}
	s.sasl = s.newSASL()
	return s
}

// Mail starts a transaction (RFC 5321 section 4.1.1.2). go-smtp has
// already checked SIZE= against the limit (552 5.3.4). A submission
// server wants AUTH first and a sender the user owns (submission.go).
func (s *Session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	if s.srv.opts.Submission && s.authUser == "" {
		s.log.Info("mail refused", "reason", "not authenticated", "client", s.cc.ip)
		return errAuthRequired
	}
	var a address.Address
	if from != "" {
		var err error
		if a, err = address.Parse(from); err != nil {
			return errBadSender
		}
		if !opts.UTF8 && !isASCII(from) {
			return errNeedUTF8
		}
	}
	// An authenticated client sends as its user, on any port.
	if s.authUser != "" && from != "" {
		if e := s.checkSender(a, errSenderNotOwned); e != nil {
			return e
		}
	}
	s.from = a
	s.utf8 = opts.UTF8
	s.inTransaction = true
	return nil
}

// Rcpt accepts a recipient if it is ours, or if the client may relay
// (RFC 5321 section 4.1.1.3). Unknown local recipients are refused here,
// so that we never accept mail we would have to bounce. go-smtp has
// already enforced the recipient limit (452 4.5.3). A connection that has
// had MaxBadRcpts recipients refused is closed.
func (s *Session) Rcpt(to string, _ *smtp.RcptOptions) error {
	e := s.rcpt(to)
	switch {
	case e == nil:
		return nil // not e: a nil *SMTPError is a non-nil error
	case e == errConfig, e == errMailboxFull, e == errMailboxFullTemp: // not the client's fault
		return e
	}
	s.badRcpts++
	if s.badRcpts >= s.srv.opts.MaxBadRcpts {
		s.log.Info("closing", "reason", "too many refused recipients", "client", s.cc.ip, "count", s.badRcpts)
		s.closeWith(errTooManyBad)
		return errTooManyBad
	}
	return e
}

func (s *Session) rcpt(to string) *smtp.SMTPError {
	a, err := address.Parse(to)
	if err != nil {
		return errBadRcpt
	}
	if !s.utf8 && !isASCII(to) {
		return errNeedUTF8
	}
	cfg := s.srv.opts.Config
	local, err := cfg.IsLocal(a.Domain)
	if err != nil {
		s.log.Error("reading local domains", "err", err)
		return errConfig
	}
	switch {
	case local:
		// An alias loop or an over-long expansion is the administrator's
		// to fix: a temporary failure, so that the mail waits for it.
		ok, err := cfg.Exists(a)
		if errors.Is(err, config.ErrUnsettled) {
			s.log.Warn("rcpt deferred", "rcpt", a.String(), "reason", "etc/users or etc/aliases rewritten in place a moment ago", "client", s.cc.ip)
			return errUnsettled
		}
		if err != nil {
			s.log.Error("resolving recipient", "rcpt", a.String(), "err", err)
			return errConfig
		}
		if !ok {
			s.log.Info("rcpt refused", "rcpt", a.String(), "reason", "no such user", "client", s.cc.ip)
			return errNoSuchUser
		}
		if e := s.mailboxFull(a); e != nil {
			return e
		}
	case s.authUser == "":
		s.log.Info("rcpt refused", "rcpt", a.String(), "reason", "relay denied", "client", s.cc.ip)
		return errRelayDenied
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	// A recipient given twice gets one copy (RFC 5321 section 3.3 lets
	// the server say 250 to both).
	if !s.seen[a.Key()] {
		s.seen[a.Key()] = true
		rc := queue.Recipient{Addr: a}
		if to != a.String() {
			rc.Orig = to
		}
		s.rcpts = append(s.rcpts, rc)
	}
	return nil
}

// Reset clears the transaction (RSET, a new EHLO, the end of a message).
func (s *Session) Reset() {
	s.inTransaction = false
	s.from = address.Address{}
	s.utf8 = false
	s.rcpts = nil
	s.seen = nil
}

// Logout is called once when the connection ends.
func (s *Session) Logout() error {
	s.Reset()
	s.cancelAuth()
	s.cancel()
	return nil
}

// proto names the protocol for Received and the queue (RFC 3848).
func (s *Session) proto() string {
	p := "ESMTP"
	if _, tls := s.conn.TLSConnectionState(); tls {
		p += "S"
	}
	if s.authUser != "" {
		p += "A"
	}
	return p
}

// closeWith writes a last reply straight to the socket and closes it. It
// is for faults after which the byte stream can no longer be followed (a
// line over the limit inside DATA, a timeout): go-smtp's own reply to the
// Data error then fails on the closed socket, and its loop ends.
func (s *Session) closeWith(e *smtp.SMTPError) {
	nc := s.conn.Conn()
	_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	line := formatReply(e) + ", closing connection\r\n"
	if _, err := nc.Write([]byte(line)); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Info("writing last reply", "err", err)
	}
	if err := nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Info("closing connection", "err", err)
	}
}

func formatReply(e *smtp.SMTPError) string {
	ec := e.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, ec[0], ec[1], ec[2], e.Message)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
