package sasl

import (
	"bytes"
	"fmt"
)

// plain is the PLAIN mechanism, RFC 4616.
type plain struct {
	check PasswordFunc
	asked bool // an empty challenge was sent for want of an initial response
	done  bool
}

// NewPlain returns a PLAIN server that calls check with the
// authentication identity and password. An authorization identity is
// accepted only when empty or equal to the authentication identity (we
// have no users who may act for others).
func NewPlain(check PasswordFunc) Mechanism { return &plain{check: check} }

func (m *plain) Next(resp []byte) ([]byte, bool, error) {
	if m.done {
		return nil, true, ErrUnexpected
	}
	if resp == nil && !m.asked {
		// RFC 4616 section 2: no initial response, send an empty challenge.
		m.asked = true
		return []byte{}, false, nil
	}
	m.done = true
	user, pass, err := ParsePlain(resp)
	if err != nil {
		return nil, true, err
	}
	return nil, true, m.check(user, pass)
}

// ParsePlain splits a PLAIN message, [authzid] NUL authcid NUL passwd
// (RFC 4616 section 2), and refuses an authzid other than authcid.
func ParsePlain(b []byte) (user, pass string, err error) {
	if len(b) > MaxResponse {
		return "", "", ErrTooLong
	}
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", "", fmt.Errorf("%w: PLAIN wants authzid NUL authcid NUL password", ErrSyntax)
	}
	if len(parts[0]) > 0 && !bytes.Equal(parts[0], parts[1]) {
		return "", "", ErrAuthzid
	}
	return string(parts[1]), string(parts[2]), nil
}
