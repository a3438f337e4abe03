package smtpd

import (
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
