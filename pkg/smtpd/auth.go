package smtpd

import (
	"errors"
	"net/netip"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsrv/pkg/sasl"
)

// AUTH (RFC 4954). go-smtp carries the exchange (base64, "334", the "*"
// that cancels); pkg/sasl runs the mechanisms and decides which are
// allowed on this connection; pkg/auth checks, throttles and logs every
// attempt (never the password or the payloads).

// newSASL returns the authentication side of a session, nil when the
// server has no Authenticator. A Session is made anew after STARTTLS, so
// TLS is known here.
func (s *Session) newSASL() *sasl.Server {
	o := &s.srv.opts
	if o.Auth == nil {
		return nil
	}
	_, isTLS := s.conn.TLSConnectionState()
	ip, _ := netip.ParseAddr(s.cc.ip)
	return &sasl.Server{
		Auth: o.Auth, Service: "smtpd", RemoteIP: ip.Unmap(), TLS: isTLS,
		Insecure: o.AllowInsecureAuth, Ctx: s.ctx,
	}
}

// AuthMechanisms lists the mechanisms for EHLO's AUTH keyword: none once
// authenticated or without an Authenticator; PLAIN and LOGIN only where
// plain text is allowed; SCRAM-SHA-256 on every connection, since it
// never sends the password (mailsrv-auth(7)).
func (s *Session) AuthMechanisms() []string {
	if s.sasl == nil || s.authUser != "" {
		return nil
	}
	return s.sasl.Mechanisms()
}

// Auth starts an exchange. go-smtp refuses a second AUTH after success.
func (s *Session) Auth(mech string) (gosasl.Server, error) {
	s.cancelAuth()
	if s.sasl == nil {
		return nil, errAuthUnknown
	}
	// RFC 4954 section 4: no AUTH during a mail transaction.
	if s.inTransaction {
		return nil, errAuthInTransaction
	}
	m, err := s.sasl.Start(mech)
	if err != nil {
		e := authReply(err)
		s.log.Info("auth refused", "mech", mech, "client", s.cc.ip, "reply", replyCode(e))
		return nil, e
	}
	s.mech = m
	return authExchange{s: s, m: m}, nil
}

// cancelAuth ends an exchange the client abandoned ("*", or a new AUTH,
// or the connection closing), so that SCRAM counts it as failed.
func (s *Session) cancelAuth() {
	if s.mech != nil {
		sasl.Cancel(s.mech)
		s.mech = nil
	}
}

// authExchange is one exchange as go-smtp sees it.
type authExchange struct {
	s *Session
	m sasl.Mechanism
}

func (a authExchange) Next(response []byte) ([]byte, bool, error) {
	s := a.s
	ch, done, err := a.m.Next(response)
	if err != nil {
		s.mech = nil
		return nil, false, authReply(err)
	}
	if !done {
		return ch, false, nil
	}
	s.mech = nil
	u, ok := s.sasl.User()
	if !ok { // a mechanism that says done without a user: a bug
		return nil, false, errAuthTemp
	}
	s.user = u
	s.authUser = u.Addr.String()
	s.log.Info("authenticated", "user", s.authUser, "client", s.cc.ip)
	return ch, true, nil
}

// authReply maps a failed exchange to the reply of RFC 4954 section 6,
// without the internal text of the error.
func authReply(err error) *smtp.SMTPError {
	if errors.Is(err, sasl.ErrTooLong) {
		return errAuthTooLong
	}
	switch sasl.Classify(err) {
	case sasl.Failed:
		return errAuthFailed
	case sasl.Malformed:
		return errAuthSyntax
	case sasl.Unsupported:
		return errAuthUnknown
	case sasl.NeedsTLS:
		return errAuthNeedsTLS
	}
	return errAuthTemp // throttled, a server fault, or the client left
}
