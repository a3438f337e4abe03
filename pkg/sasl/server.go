package sasl

import (
	"context"
	"net/netip"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// Server is the authentication side of one connection: it knows what the
// connection is (encrypted? from where?) and so which mechanisms it may
// offer, starts them, and holds the user once one succeeded. Fill the
// fields when the connection starts, and set TLS after STARTTLS/STLS.
type Server struct {
	Auth     *auth.Authenticator
	Service  string          // smtpd, imapd, pop3d: for the log
	RemoteIP netip.Addr      // the client; zero if unknown (a pipe)
	TLS      bool            // the connection is encrypted
	Insecure bool            // the administrator allows plain text without TLS (--insecure-auth or so)
	Ctx      context.Context // ends throttle delays when the connection closes

	user config.User
	ok   bool
}

// PlaintextAllowed reports whether mechanisms that send the password
// itself (PLAIN, LOGIN, and the protocols' own USER/PASS and LOGIN
// commands) may be used: on an encrypted connection, from a loopback
// address, or when the administrator allows it. The daemons use it for
// their non-SASL commands as well.
func PlaintextAllowed(tls bool, remote netip.Addr, insecure bool) bool {
	return tls || insecure || remote.Unmap().IsLoopback()
}

// Mechanisms lists the mechanisms to advertise on this connection, best
// first. SCRAM-SHA-256 is offered whenever passwords are checked against
// etc/users (here or by the auth service; not through an external
// checkpassword program), since it
// never sends the password; PLAIN and LOGIN only when PlaintextAllowed.
func (s *Server) Mechanisms() []string {
	var out []string
	if s.scramPossible() {
		out = append(out, ScramSHA256)
	}
	if PlaintextAllowed(s.TLS, s.RemoteIP, s.Insecure) {
		out = append(out, Plain, Login)
	}
	return out
}

func (s *Server) scramPossible() bool {
	switch s.Auth.Backend.(type) {
	case nil, auth.UsersBackend, *auth.UsersBackend, auth.UsersFile:
		return true
	}
	return false
}

// Start begins the exchange of the named mechanism (compared without
// regard to case, as RFC 4422 section 3.1 names are upper case). It fails
// with ErrUnknownMechanism, or ErrEncryptionRequired for a plain-text
// mechanism that is not allowed here.
func (s *Server) Start(name string) (Mechanism, error) {
	switch upper(name) {
	case Plain, Login:
		if !PlaintextAllowed(s.TLS, s.RemoteIP, s.Insecure) {
			return nil, ErrEncryptionRequired
		}
		mech := upper(name)
		check := func(user, pass string) error { return s.password(mech, user, pass) }
		if mech == Plain {
			return NewPlain(check), nil
		}
		return NewLogin(check), nil
	case ScramSHA256:
		if !s.scramPossible() {
			return nil, ErrUnknownMechanism
		}
		return NewScramSHA256(s.scramLookup), nil
	}
	return nil, ErrUnknownMechanism
}

// User returns the user authenticated by the last exchange that
// succeeded.
func (s *Server) User() (config.User, bool) { return s.user, s.ok }

func (s *Server) request(mech, user, pass string) auth.Request {
	return auth.Request{Username: user, Password: pass, RemoteIP: s.RemoteIP, Mech: mech, Service: s.Service, Ctx: s.Ctx}
}

// password checks a PLAIN or LOGIN login (and may serve a protocol's own
// USER/PASS or LOGIN command: see Password).
func (s *Server) password(mech, user, pass string) error {
	u, err := s.Auth.Authenticate(s.request(mech, user, pass))
	if err != nil {
		return err
	}
	s.user, s.ok = u, true
	return nil
}

// Password checks a login by a protocol command that is not SASL (POP3
// USER/PASS, IMAP LOGIN), under the same rules: ErrEncryptionRequired
// where plain text is not allowed, else auth.Authenticate's errors. mech
// names the command in the log.
func (s *Server) Password(mech, user, pass string) (config.User, error) {
	if !PlaintextAllowed(s.TLS, s.RemoteIP, s.Insecure) {
		return config.User{}, ErrEncryptionRequired
	}
	if err := s.password(mech, user, pass); err != nil {
		return config.User{}, err
	}
	return s.user, nil
}

func (s *Server) scramLookup(user string) (auth.ScramKeys, func(bool) error, error) {
	l, err := s.Auth.StartScram(s.request(ScramSHA256, user, ""))
	if err != nil {
		return auth.ScramKeys{}, nil, err
	}
	finish := func(ok bool) error {
		u, err := l.Finish(ok)
		if err == nil {
			s.user, s.ok = u, true
		}
		return err
	}
	return l.Keys, finish, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
