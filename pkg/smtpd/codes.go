package smtpd

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// reply builds a protocol failure. Codes are RFC 5321 section 4.2.3,
// enhanced codes RFC 3463 (registry: RFC 5248).
func reply(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// Replies this server gives, named.
var (
	// RCPT: an address of one of our domains that names nobody. Refused
	// here, never bounced later (no backscatter).
	errNoSuchUser = reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")
	// RCPT: another domain, and the client has not authenticated.
	errRelayDenied = reply(554, smtp.EnhancedCode{5, 7, 1}, "Relaying denied: authenticate to send to other domains")
	errBadRcpt     = reply(501, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax")
	errBadSender   = reply(501, smtp.EnhancedCode{5, 1, 7}, "Bad sender address syntax")
	// RFC 6531 section 3.4: a UTF-8 address needs MAIL ... SMTPUTF8.
	errNeedUTF8 = reply(553, smtp.EnhancedCode{5, 6, 7}, "Non-ASCII address needs the SMTPUTF8 parameter of MAIL")
	// A control file could not be read: try again later.
	errConfig = reply(451, smtp.EnhancedCode{4, 3, 0}, "Local configuration error, try again later")
	// config.ErrUnsettled: etc/users is being edited in place.
	errUnsettled = reply(451, smtp.EnhancedCode{4, 3, 0}, "User list being changed, try again in a moment")

	// DATA/BDAT: a CR or LF that is not part of a CRLF pair. RFC 5321
	// section 2.3.8 forbids them; accepting them lets a client smuggle a
	// second message past a server that ends DATA at "\n.\n" (SMTP
	// smuggling: CVE-2023-51764, CVE-2023-51765, CVE-2023-51766). The
	// whole message is refused and nothing is queued.
	errBareNewline = reply(554, smtp.EnhancedCode{5, 6, 0}, "Bare CR or LF in message refused: lines must end with CRLF (RFC 5321 section 2.3.8)")
	// RFC 5321 section 6.3: a message that has gone round too often.
	errLoop = reply(554, smtp.EnhancedCode{5, 4, 6}, "Too many Received headers: mail loop")
	// RFC 5321 section 4.5.3.1.6 and 4.5.3.1.10.
	errLineTooLong = reply(500, smtp.EnhancedCode{5, 5, 0}, "Line too long")
	// An idle or slow client, RFC 5321 section 4.5.3.2.
	errTimeout = reply(421, smtp.EnhancedCode{4, 4, 2}, "Timeout, closing connection")
	// Too many refused recipients on one connection: a dictionary attack,
	// or a badly broken client.
	errTooManyBad = reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many refused recipients")
	errAborted    = reply(451, smtp.EnhancedCode{4, 3, 0}, "Message transfer aborted")

	// The queue refused for a reason that may pass.
	errQueueTemp = reply(451, smtp.EnhancedCode{4, 3, 0}, "Queue unavailable, try again later")
	// No space left on the queue's disk (RFC 3463: 4.3.1 mail system full).
	errQueueFull = reply(452, smtp.EnhancedCode{4, 3, 1}, "Mail system full, try again later")
)

// AUTH, RFC 4954 section 6, and submission, RFC 6409.
var (
	errAuthFailed   = reply(535, smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")
	errAuthTemp     = reply(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure, try again later")
	errAuthSyntax   = reply(501, smtp.EnhancedCode{5, 5, 2}, "Malformed authentication exchange")
	errAuthTooLong  = reply(500, smtp.EnhancedCode{5, 5, 6}, "Authentication exchange line is too long")
	errAuthUnknown  = reply(504, smtp.EnhancedCode{5, 5, 4}, "Unrecognized authentication type")
	errAuthNeedsTLS = reply(538, smtp.EnhancedCode{5, 7, 11}, "Encryption required for requested authentication mechanism")
	// RFC 4954 section 4: AUTH is not allowed during a mail transaction.
	errAuthInTransaction = reply(503, smtp.EnhancedCode{5, 5, 1}, "AUTH not allowed during a mail transaction")
	// Submission: MAIL before AUTH (RFC 4954 section 6).
	errAuthRequired = reply(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	// Submission: an envelope sender the user may not use (RFC 6409
	// section 6.1; RFC 3463 5.7.1, delivery not authorized).
	errSenderNotOwned = reply(553, smtp.EnhancedCode{5, 7, 1}, "Sender address not owned by the authenticated user")
	// Submission: a From header address the user may not use.
	errFromNotOwned = reply(554, smtp.EnhancedCode{5, 7, 1}, "From header address not owned by the authenticated user")
	// Submission: no From header, or one that cannot be read
	// (RFC 5322 section 3.6 requires one).
	errBadFrom = reply(554, smtp.EnhancedCode{5, 6, 0}, "Missing or malformed From header")
)

// replyCode formats a reply's codes for the log.
func replyCode(e *smtp.SMTPError) string {
	ec := e.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d", e.Code, ec[0], ec[1], ec[2])
}
