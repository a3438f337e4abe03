package sasl

import (
	"context"
	"errors"

	"mailsrv/pkg/auth"
)

// Outcome is what a failed exchange means to the client, whatever the
// protocol; each daemon maps it to its own reply.
type Outcome int

const (
	// Failed: wrong user name or password, or an authorization identity
	// we refuse. SMTP 535 5.7.8 (RFC 4954 section 6), IMAP NO
	// [AUTHENTICATIONFAILED] (or [AUTHORIZATIONFAILED]), POP3 -ERR [AUTH].
	Failed Outcome = iota
	// Temporary: locked out by the throttle, or a fault of the server.
	// SMTP 454 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP].
	Temporary
	// Malformed: the client broke the mechanism's syntax or order, or sent
	// too much. SMTP 501 5.5.2 (500 5.5.6 for too long), IMAP BAD, POP3 -ERR.
	Malformed
	// Unsupported: no such mechanism here. SMTP 504 5.5.4, IMAP NO, POP3 -ERR.
	Unsupported
	// NeedsTLS: a plain-text mechanism on an unencrypted connection.
	// SMTP 538 5.7.11, IMAP NO [PRIVACYREQUIRED], POP3 -ERR [AUTH].
	NeedsTLS
	// Gone: the connection ended during a throttle delay; reply nothing.
	Gone
)

// Classify says what a Mechanism's or Server.Password's error means.
func Classify(err error) Outcome {
	switch {
	case errors.Is(err, auth.ErrMismatch), errors.Is(err, ErrAuthzid):
		return Failed
	case errors.Is(err, ErrSyntax), errors.Is(err, ErrUnexpected), errors.Is(err, ErrTooLong):
		return Malformed
	case errors.Is(err, ErrUnknownMechanism):
		return Unsupported
	case errors.Is(err, ErrEncryptionRequired):
		return NeedsTLS
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Gone
	}
	return Temporary // auth.ErrThrottled and faults of the server
}
