// Package sasl is the server side of the SASL mechanisms (RFC 4422) that
// smtpd (AUTH, RFC 4954), imapd (AUTHENTICATE, RFC 9051 section 6.2.2) and
// pop3d (AUTH, RFC 5034) share: PLAIN (RFC 4616), LOGIN
// (draft-murchison-sasl-login-00) and SCRAM-SHA-256 (RFC 5802, RFC 7677),
// without channel binding.
//
// A Mechanism only turns client responses into challenges; the protocol
// carries them (base64, "334 ", "+ ", the "*" that cancels) and checks
// passwords through pkg/auth. The Mechanism interface is the same as
// github.com/emersion/go-sasl's Server, so a go-smtp session can return
// one from its Auth method.
//
// We do not use go-sasl's servers: it has no LOGIN server any more, its
// PLAIN server does not refuse a differing authorization identity or
// bound the field sizes, and neither has SCRAM. The mechanisms here are
// small and keep their errors typed for the protocols.
package sasl

import (
	"errors"
)

// Mechanism is one authentication exchange on the server. Next gets the
// client's response (nil before the first one when the client sent no
// initial response; an empty, non-nil slice for an empty response) and
// returns the next challenge, whether the exchange is over, and an error
// if it failed. When done is true and err nil, the client is
// authenticated; a challenge returned with done false must be sent.
type Mechanism interface {
	Next(response []byte) (challenge []byte, done bool, err error)
}

// Names of the mechanisms.
const (
	Plain       = "PLAIN"
	Login       = "LOGIN"
	ScramSHA256 = "SCRAM-SHA-256"
)

// MaxResponse is the longest client response a mechanism accepts, after
// base64 decoding. RFC 4616 section 2 bounds each PLAIN field to 255
// octets; we allow more for long passwords.
const MaxResponse = 4096

// Errors of Next besides those of pkg/auth (auth.ErrMismatch,
// auth.ErrThrottled and server faults). ErrSyntax and ErrUnexpected are
// the client's mistake: SMTP "501 5.5.2", IMAP BAD, POP3 -ERR.
var (
	ErrSyntax     = errors.New("sasl: malformed client response")
	ErrUnexpected = errors.New("sasl: unexpected client response")
	// ErrAuthzid is a request to act as another user: SMTP
	// "535 5.7.8", IMAP NO [AUTHORIZATIONFAILED], POP3 -ERR [AUTH].
	ErrAuthzid = errors.New("sasl: authorization identity differs from authentication identity")
	// ErrTooLong is a response over MaxResponse bytes: SMTP "500 5.5.6".
	ErrTooLong = errors.New("sasl: client response too long")
	// ErrUnknownMechanism: SMTP "504 5.5.4", IMAP NO, POP3 -ERR.
	ErrUnknownMechanism = errors.New("sasl: mechanism not supported")
	// ErrEncryptionRequired is a plain-text mechanism on an unencrypted,
	// non-loopback connection: SMTP "538 5.7.11" (RFC 4954 section 6),
	// IMAP NO [PRIVACYREQUIRED] (RFC 5530), POP3 -ERR (RFC 5034).
	ErrEncryptionRequired = errors.New("sasl: encryption required for plain-text mechanism")
)

// PasswordFunc checks a user name and password for PLAIN and LOGIN.
type PasswordFunc func(username, password string) error

// Cancel ends an exchange the client cancelled ("*", RFC 4422 section
// 3.5) or abandoned by closing the connection. A SCRAM exchange that had
// started a login records and logs it as failed; the other mechanisms
// have nothing to undo. Daemons call it whenever they stop before done.
func Cancel(m Mechanism) {
	if c, ok := m.(interface{ cancel() }); ok {
		c.cancel()
	}
}
