package imap

import (
	"encoding/base64"
	"errors"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
	"mailsrv/pkg/sasl"
)

// Commands of the not-authenticated state (RFC 3501 section 6.2). Every
// password goes through pkg/sasl and the shared auth.Authenticator
// (throttling, hash upgrades, the auth log line); answers carry the
// response codes of RFC 5530.
func init() {
	commands["LOGIN"] = handler{cmdLogin, notAuth}
	commands["AUTHENTICATE"] = handler{cmdAuthenticate, notAuth}
	commands["STARTTLS"] = handler{cmdStartTLS, notAuth}
}

// maxAuthLine bounds a SASL response line (base64 of sasl.MaxResponse
// bytes, with room to spare).
const maxAuthLine = 8 * 1024

// maxAuthFailures is how many failed logins end a session; each costs the
// client an argon2id check, and a new connection.
const maxAuthFailures = 3

// errCancelled is a SASL exchange the client cancelled with "*".
var errCancelled = errors.New("AUTHENTICATE cancelled")

// RFC 3501 section 6.2.3. A bare local part is completed with the only
// local domain (see config.LoginName).
func cmdLogin(s *session, c *command) error {
	var user, pass string
	err := c.p.SP()
	if err == nil {
		user, err = c.p.AString()
	}
	if err == nil {
		err = c.p.SP()
	}
	if err == nil {
		pass, err = c.p.AString()
	}
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	u, err := s.sasl.Password("LOGIN", s.srv.authenticator().LoginName(user), pass)
	return s.loggedIn(u, err, "LOGIN")
}

// RFC 3501 section 6.2.2 with SASL-IR (RFC 4959): the mechanisms of
// pkg/sasl (PLAIN, LOGIN, SCRAM-SHA-256).
func cmdAuthenticate(s *session, c *command) error {
	var mech string
	err := c.p.SP()
	if err == nil {
		mech, err = c.p.Atom()
	}
	if err != nil {
		return err
	}
	var ir []byte // nil: no initial response
	if c.p.Accept(' ') {
		text, err := c.p.AString()
		if err != nil {
			return err
		}
		if ir, err = decodeSASL(text, true); err != nil {
			return bad("invalid base64 in initial response")
		}
	}
	if err := c.p.End(); err != nil {
		return err
	}
	m, err := s.sasl.Start(mech)
	if err == nil {
		err = s.exchange(m, ir)
	}
	var ce *connError
	var st *status
	switch {
	case errors.As(err, &ce), errors.As(err, &st):
		return err
	case errors.Is(err, errCancelled):
		return bad("AUTHENTICATE cancelled")
	}
	u, _ := s.sasl.User()
	return s.loggedIn(u, err, "AUTHENTICATE")
}

// exchange carries a SASL exchange: "+ " and base64 challenges, base64
// responses, "*" to cancel (RFC 3501 section 6.2.2). A failure of the
// connection comes back as a *connError.
func (s *session) exchange(m sasl.Mechanism, resp []byte) error {
	for {
		ch, done, err := m.Next(resp)
		if err != nil || done {
			return err
		}
		s.w.Raw("+ " + base64.StdEncoding.EncodeToString(ch) + "\r\n")
		if err := s.flush(); err != nil {
			sasl.Cancel(m)
			return &connError{err}
		}
		line, err := s.r.ReadLine(maxAuthLine)
		if err != nil {
			sasl.Cancel(m)
			return &connError{err}
		}
		if string(line) == "*" {
			sasl.Cancel(m)
			return errCancelled
		}
		if resp, err = decodeSASL(string(line), false); err != nil {
			sasl.Cancel(m)
			return bad("invalid base64")
		}
	}
}

// decodeSASL decodes one base64 client response. An empty continuation
// line is an empty response; "=" is an empty initial response (RFC 4959
// section 3).
func decodeSASL(text string, initial bool) ([]byte, error) {
	if text == "" || (initial && text == "=") {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, sasl.ErrSyntax
	}
	return b, nil
}

// loggedIn answers the end of a login attempt, sorting failures as
// sasl.Classify does into the response codes of RFC 5530. Throttled
// attempts get the same answer whatever the password: it was not checked.
func (s *session) loggedIn(u config.User, err error, cmd string) error {
	if err == nil {
		return s.openStore(u)
	}
	switch sasl.Classify(err) {
	case sasl.Failed:
		code := "AUTHENTICATIONFAILED"
		if errors.Is(err, sasl.ErrAuthzid) {
			code = "AUTHORIZATIONFAILED"
		}
		return s.authFailed(no(code, "invalid credentials"))
	case sasl.Malformed:
		return bad("malformed SASL response")
	case sasl.Unsupported:
		return no("", "unsupported authentication mechanism")
	case sasl.NeedsTLS:
		text := cmd + " refused on an unencrypted connection"
		if s.srv.TLSConfig != nil {
			text += "; use STARTTLS"
		}
		return no("PRIVACYREQUIRED", text)
	case sasl.Gone:
		return &connError{err}
	}
	if errors.Is(err, auth.ErrThrottled) {
		return s.authFailed(no("UNAVAILABLE", "authentication temporarily unavailable"))
	}
	s.log.Error("login", "err", err)
	return no("UNAVAILABLE", "authentication temporarily unavailable")
}

// authFailed counts a failed login and ends the session after
// maxAuthFailures.
func (s *session) authFailed(st error) error {
	if s.authFailures++; s.authFailures >= maxAuthFailures {
		s.w.Raw("* BYE too many failed logins\r\n")
		s.state = stateLogout
	}
	return st
}

// openStore opens the mailbox of a user who logged in. The password is
// never logged (pkg/auth logs the attempt).
func (s *session) openStore(u config.User) error {
	box := s.srv.Config.Mailbox(u)
	var store *mailstore.Store
	err := s.beforeOpen(u, box)
	if err == nil {
		store, err = mailstore.Open(box)
	}
	if err != nil {
		s.log.Error("open mailbox", "user", u.Addr.Key(), "err", err)
		return no("UNAVAILABLE", "mailbox temporarily unavailable")
	}
	if err := maildir.CleanTmp(box); err != nil {
		s.log.Warn("cleaning tmp/", "user", u.Addr.Key(), "err", err)
	}
	s.user, s.store, s.state = u, store, stateAuth
	s.r.SetMaxLiteral(s.lim.MaxLiteral)
	s.log.Info("login", "user", u.Addr.Key(), "tls", s.tls)
	return ok("CAPABILITY "+s.capabilities(), "logged in")
}

func (s *session) beforeOpen(u config.User, box string) error {
	if s.srv.BeforeOpen == nil {
		return nil
	}
	return s.srv.BeforeOpen(u, box)
}
