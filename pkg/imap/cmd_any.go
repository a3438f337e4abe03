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
	s.unselect()
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
// speaks are listed in the ENABLED response: IMAP4rev2 and UTF8=ACCEPT
// (enable, rev2.go), CONDSTORE and QRESYNC (RFC 7162, QRESYNC implying
// CONDSTORE; condstore.go). Others are ignored.
func cmdEnable(s *session, c *command) error {
	var names []string
	for !c.p.AtEnd() {
		if err := c.p.SP(); err != nil {
			return err
		}
		a, err := c.p.Atom()
		if err != nil {
			return err
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		return bad("ENABLE needs a capability")
	}
	var enabled []string
	for _, a := range names {
		n := strings.ToUpper(a)
		switch {
		case n == "CONDSTORE" && !s.condstore:
		case n == "QRESYNC" && !s.qresync:
			s.qresync = true
		default:
			if name, ok := s.enable(a); ok {
				enabled = append(enabled, name)
			}
			continue
		}
		enabled = append(enabled, n)
		if err := s.enableCondstore(); err != nil {
			return err
		}
	}
	s.w.Raw("* ENABLED" + strings.Join(append([]string{""}, enabled...), " ") + "\r\n")
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
