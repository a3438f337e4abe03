package imap

import (
	"crypto/tls"
	"errors"

	"mailsrv/pkg/imap/wire"
)

// errAnswered ends a command that sent its own tagged response
// (STARTTLS, whose OK must precede the handshake).
var errAnswered = errors.New("tagged response already sent")

// RFC 3501 section 6.2.1 and RFC 9051 section 6.2.1: answer OK, then
// negotiate TLS on the same connection. Whatever the client sent after the
// STARTTLS line came in the clear and is thrown away unread (the STARTTLS
// command injection flaw, CVE-2011-0411): the session reads afresh from the
// TLS layer. If such bytes reach the socket after our read instead, the
// handshake reads them and fails, and the session ends. The client then
// asks CAPABILITY again: no STARTTLS, no LOGINDISABLED, the plain-text
// mechanisms appear.
func cmdStartTLS(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	if s.srv.TLSConfig == nil {
		return no("", "TLS is not configured")
	}
	if s.tls {
		return bad("TLS is already active")
	}
	s.tagged(c.tag, &status{kind: "OK", text: "begin TLS negotiation now"})
	if err := s.flush(); err != nil {
		return &connError{err}
	}
	if n := s.r.Buffered(); n > 0 {
		s.log.Warn("discarding data pipelined after STARTTLS", "bytes", n)
	}
	tc, err := handshake(s.ctx, s.conn, s.srv.TLSConfig)
	if err != nil {
		s.log.Info("STARTTLS handshake failed", "err", err)
		s.state = stateLogout
		return errAnswered
	}
	cont := s.r.Continue
	s.conn, s.tls, s.sasl.TLS = tc, true, true
	s.r = wire.NewReader(tc, s.lim)
	s.r.SetMaxLiteral(min(s.lim.MaxLiteral, preauthLiteral))
	s.r.Continue = cont
	s.w = wire.NewWriter(tc)
	s.log.Debug("STARTTLS", "version", tls.VersionName(tc.ConnectionState().Version))
	return errAnswered
}
