package imap

import (
	"strings"
)

// Commands valid in any state (RFC 3501 section 6.1) and the small
// extensions that sit beside them.
func init() {
	commands["CAPABILITY"] = handler{cmdCapability, anyState}
	commands["NOOP"] = handler{cmdNoop, anyState}
	commands["LOGOUT"] = handler{cmdLogout, anyState}
	commands["ID"] = handler{cmdID, anyState}
	commands["ENABLE"] = handler{cmdEnable, authed}
	commands["NAMESPACE"] = handler{cmdNamespace, authed}
}

// RFC 3501 section 6.1.1.
func cmdCapability(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	s.w.Raw("* CAPABILITY " + s.capabilities() + "\r\n")
	return nil
}

// RFC 3501 section 6.1.2: NOOP is the classic poll; the updates are sent
// by finish like after every command.
func cmdNoop(s *session, c *command) error { return c.p.End() }

// RFC 3501 section 6.1.3.
func cmdLogout(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	s.w.Raw("* BYE logging out\r\n")
	s.state = stateLogout
	s.sel = nil
	return nil
}

// RFC 2971: ID ("name" "value" ...) or ID NIL. What the client says is
// logged (bounded), we answer with our name.
func cmdID(s *session, c *command) error {
	if err := c.p.SP(); err != nil {
		return err
	}
	var fields []string
	if c.p.Peek() == '(' {
		n := 0
		err := c.p.List(func() error {
			v, ok, err := c.p.NString()
			if n++; n > 60 || len(v) > 1024 {
				return bad("ID: too many or too long fields")
			}
			if ok {
				fields = append(fields, v)
			}
			return err
		})
		if err != nil {
			return err
		}
	} else if _, _, err := c.p.NString(); err != nil {
		return err
	}
	if err := c.p.End(); err != nil {
		return err
	}
	if len(fields) > 0 {
		s.log.Info("client id", "id", strings.Join(fields, " "))
	}
	s.w.Raw(`* ID ("name" "mailsrv")` + "\r\n")
	return nil
}

// RFC 5161: ENABLE names extensions; those that change how this session
// speaks (enable in rev2.go) are listed in the ENABLED response, the
// others are ignored.
func cmdEnable(s *session, c *command) error {
	var done []string
	for !c.p.AtEnd() {
		if err := c.p.SP(); err != nil {
			return err
		}
		a, err := c.p.Atom()
		if err != nil {
			return err
		}
		if name, ok := s.enable(a); ok {
			done = append(done, name)
		}
	}
	s.w.Raw("* ENABLED")
	for _, a := range done {
		s.w.Raw(" " + a)
	}
	s.w.CRLF()
	return nil
}

// RFC 2342: one personal namespace, no prefix, "/" as delimiter.
func cmdNamespace(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	s.w.Raw(`* NAMESPACE (("" "/")) NIL NIL` + "\r\n")
	return nil
}
