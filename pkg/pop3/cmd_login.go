package pop3

import (
	"encoding/base64"
	"errors"
	"net"
	"strconv"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/sasl"
)

// Logins: USER/PASS (RFC 1939 section 7) and AUTH (RFC 5034), both checked
// by pkg/sasl and pkg/auth (throttling, hash upgrades, the auth log line),
// then the mailbox is locked and its snapshot taken.

// errInsecure refuses credentials on a plain-text connection.
var errInsecure = &Error{Code: CodeAuth, Msg: "plain-text login refused on an unencrypted connection; use STLS"}

var errAborted = errors.New("aborted by client")

func (s *session) plaintextAllowed() bool {
	return sasl.PlaintextAllowed(s.sasl.TLS, s.sasl.RemoteIP, s.sasl.Insecure)
}

func (s *session) cmdUSER(cmd Command) {
	if !s.plaintextAllowed() {
		s.fail(errInsecure)
		return
	}
	if len(cmd.Args) != 1 {
		s.bad("USER takes one argument")
		return
	}
	s.user = cmd.Args[0]
	writeOK(s.w, "send PASS")
}

func (s *session) cmdPASS(cmd Command) {
	user := s.user
	s.user = ""
	switch {
	case !s.plaintextAllowed():
		s.fail(errInsecure)
	case user == "":
		s.fail(&Error{Msg: "send USER first"})
	case cmd.Rest == "":
		s.fail(&Error{Code: CodeAuth, Msg: "empty password"})
	default:
		u, err := s.sasl.Password("USER", s.srv.authenticator().LoginName(user), cmd.Rest)
		s.loggedInAs(u, err)
	}
}

// cmdAUTH runs a SASL exchange (RFC 5034). "AUTH" alone lists the
// mechanisms, as Outlook expects (RFC 1734 servers did).
func (s *session) cmdAUTH(cmd Command) {
	if len(cmd.Args) == 0 {
		writeOK(s.w, "")
		for _, m := range s.sasl.Mechanisms() {
			s.w.WriteString(m + "\r\n")
		}
		s.w.WriteString(".\r\n")
		return
	}
	if len(cmd.Args) > 2 {
		s.bad("AUTH takes a mechanism and an optional initial response")
		return
	}
	m, err := s.sasl.Start(cmd.Args[0])
	if err == nil {
		err = s.exchange(m, cmd.Args[1:])
	}
	if errors.Is(err, errAborted) {
		s.fail(&Error{Msg: "authentication aborted"})
		return
	}
	u, _ := s.sasl.User()
	s.loggedInAs(u, err)
}

// exchange carries a SASL exchange: base64 in both directions, "+ "
// before each challenge, "*" to cancel (RFC 5034 section 4).
func (s *session) exchange(m sasl.Mechanism, initial []string) error {
	var resp []byte // nil: no initial response
	if len(initial) == 1 {
		var err error
		if resp, err = decodeSASL(initial[0]); err != nil {
			sasl.Cancel(m)
			return err
		}
	}
	for {
		ch, done, err := m.Next(resp)
		if err != nil || done {
			return err
		}
		s.w.WriteString("+ " + base64.StdEncoding.EncodeToString(ch) + "\r\n")
		if err := s.flush(); err != nil {
			sasl.Cancel(m)
			return err
		}
		line, err := ReadLine(s.r, MaxAuthLine)
		if err != nil {
			sasl.Cancel(m)
			if errors.Is(err, ErrLineTooLong) {
				return sasl.ErrTooLong
			}
			s.state = stateDone
			return err
		}
		if line == "*" {
			sasl.Cancel(m)
			return errAborted
		}
		if resp, err = decodeSASL(line); err != nil {
			sasl.Cancel(m)
			return err
		}
	}
}

// decodeSASL decodes one base64 client response; "=" is an empty initial
// response (RFC 5034 section 4).
func decodeSASL(s string) ([]byte, error) {
	if s == "=" || s == "" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, sasl.ErrSyntax
	}
	return b, nil
}

// loggedInAs answers the end of a login attempt: on success it opens the
// mailbox, on failure it says why in RFC 2449/3206 terms, as sasl.Classify
// sorts the errors.
func (s *session) loggedInAs(u config.User, err error) {
	if err == nil {
		s.openSession(u)
		return
	}
	if s.state == stateDone {
		return // the connection is gone
	}
	switch sasl.Classify(err) {
	case sasl.Failed:
		s.authFailed(&Error{Code: CodeAuth, Msg: "invalid user name or password"})
	case sasl.Malformed:
		s.authFailed(&Error{Msg: "malformed SASL response"})
	case sasl.Unsupported:
		s.fail(&Error{Msg: "unsupported SASL mechanism"})
	case sasl.NeedsTLS:
		s.fail(errInsecure)
	case sasl.Gone:
		s.state = stateDone
	default:
		if errors.Is(err, auth.ErrThrottled) {
			s.authFailed(&Error{Code: CodeSysTemp, Msg: "too many failed logins, try again later"})
			return
		}
		s.log.Error("login error", "err", err)
		s.fail(&Error{Code: CodeSysTemp, Msg: "cannot check credentials now, try later"})
	}
}

// authFailed answers a failed login and ends the session after
// MaxAuthFailures.
func (s *session) authFailed(e *Error) {
	s.authFails++
	if s.authFails >= MaxAuthFailures {
		e = &Error{Code: e.Code, Msg: e.Msg + "; too many failures, closing"}
		s.state = stateDone
	}
	s.fail(e)
}

// openSession locks the mailbox of a user who logged in and takes the
// snapshot; only then does the session enter TRANSACTION (RFC 1939
// section 4).
func (s *session) openSession(u config.User) {
	s.account = u
	user, ip := u.Addr.Key(), s.ip()
	box := s.srv.Config.Mailbox(u)
	if s.srv.BeforeOpen != nil {
		if err := s.srv.BeforeOpen(u, box); err != nil {
			s.log.Error("login refused", "user", user, "ip", ip, "err", err)
			s.fail(&Error{Code: CodeSysTemp, Msg: "mailbox temporarily unavailable"})
			return
		}
	}
	if e := s.openMailbox(box); e != nil {
		s.log.Info("login refused", "user", user, "ip", ip, "reason", e.Error())
		s.fail(e)
		return
	}
	if err := maildir.CleanTmp(box); err != nil {
		s.log.Warn("cleaning tmp/", "user", user, "err", err)
	}
	s.loggedIn, s.state = true, stateTransaction
	var size int64
	for _, m := range s.box.Msgs {
		size += m.Size
	}
	s.log.Info("login", "user", user, "ip", ip, "messages", len(s.box.Msgs), "octets", size)
	writeOK(s.w, "maildrop locked and ready, "+strconv.Itoa(len(s.box.Msgs))+" messages ("+
		strconv.FormatInt(size, 10)+" octets)")
}

func (s *session) ip() string {
	ip := s.conn.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		return host
	}
	return ip
}
