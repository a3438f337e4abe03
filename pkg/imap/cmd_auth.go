package imap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/mailstore"
)

// Commands of the not-authenticated state (RFC 3501 section 6.2).
func init() {
	commands["LOGIN"] = handler{cmdLogin, notAuth}
	commands["AUTHENTICATE"] = handler{cmdAuthenticate, notAuth}
	commands["STARTTLS"] = handler{cmdStartTLS, notAuth}
}

// maxAuthLine bounds a SASL response line.
const maxAuthLine = 8 * 1024

// maxAuthFailures is how many failed logins end a session; each costs the
// client an argon2id check, and a new connection.
const maxAuthFailures = 3

// RFC 3501 section 6.2.3.
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
	if s.insecureAuthRefused() {
		return no("PRIVACYREQUIRED", "LOGIN refused on an unencrypted connection")
	}
	return s.login(user, pass)
}

// RFC 3501 section 6.2.2 with SASL-IR (RFC 4959); PLAIN only (RFC 4616).
func cmdAuthenticate(s *session, c *command) error {
	var mech string
	err := c.p.SP()
	if err == nil {
		mech, err = c.p.Atom()
	}
	if err != nil {
		return err
	}
	var ir string
	hasIR := false
	if c.p.Accept(' ') {
		if ir, err = c.p.AString(); err != nil {
			return err
		}
		hasIR = true
	}
	if err := c.p.End(); err != nil {
		return err
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return no("", "unsupported authentication mechanism")
	}
	if s.insecureAuthRefused() {
		return no("PRIVACYREQUIRED", "AUTHENTICATE refused on an unencrypted connection")
	}
	if !hasIR {
		s.w.Raw("+ \r\n")
		if err := s.flush(); err != nil {
			return &connError{err}
		}
		line, err := s.r.ReadLine(maxAuthLine)
		if err != nil {
			return &connError{err}
		}
		ir = string(line)
	}
	if ir == "*" {
		return bad("AUTHENTICATE cancelled")
	}
	if ir == "=" {
		ir = ""
	}
	data, err := base64.StdEncoding.DecodeString(ir)
	if err != nil {
		return bad("invalid base64")
	}
	parts := bytes.Split(data, []byte{0})
	if len(parts) != 3 {
		return bad("invalid PLAIN response")
	}
	if len(parts[0]) > 0 && string(parts[0]) != string(parts[1]) {
		return no("AUTHORIZATIONFAILED", "cannot log in as another user")
	}
	return s.login(string(parts[1]), string(parts[2]))
}

// STARTTLS is the hook for the TLS issue: refused while no certificate is
// configured (and then not advertised).
func cmdStartTLS(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	return no("", "TLS is not configured")
}

// login checks the password and opens the mailbox. The password is never
// logged.
func (s *session) login(user, pass string) error {
	u, err := auth.Login(s.srv.Config, s.fullName(user), pass)
	if errors.Is(err, auth.ErrMismatch) {
		s.log.Info("login failed", "user", user)
		if s.authFailures++; s.authFailures >= maxAuthFailures {
			s.w.Raw("* BYE too many failed logins\r\n")
			s.state = stateLogout
		}
		return no("AUTHENTICATIONFAILED", "invalid credentials")
	}
	if err != nil {
		s.log.Error("login", "user", user, "err", err)
		return no("UNAVAILABLE", "authentication temporarily unavailable")
	}
	store, err := mailstore.Open(s.srv.Config.Mailbox(u))
	if err != nil {
		s.log.Error("open mailbox", "user", user, "err", err)
		return no("UNAVAILABLE", "mailbox temporarily unavailable")
	}
	s.user, s.store, s.state = u, store, stateAuth
	s.r.SetMaxLiteral(s.lim.MaxLiteral)
	s.log.Info("login", "user", u.Addr.Key())
	return ok("CAPABILITY "+s.capabilities(), "logged in")
}

// fullName turns a login name into an address: user@domain as given, or
// a bare local part when there is exactly one local domain (as pop3d
// does). Anything else is passed on unchanged, to fail as an unknown user.
func (s *session) fullName(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	domains, err := s.srv.Config.Domains()
	if err != nil || len(domains) != 1 {
		return name
	}
	for d := range domains {
		name += "@" + d
	}
	return name
}
