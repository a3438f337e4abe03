package smtpd

import (
	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/mailstore"
)

// RCPT to a full mailbox (RFC 3463 X.2.2 "mailbox full"): refused at once
// rather than accepted and bounced later, when smtpd can tell. It can
// tell only when the address is one local user with a quota, and that
// mailbox's Maildir++ maildirsize is readable by smtpd (it often is not:
// smtpd runs without the right to read mailboxes) and recent; otherwise
// the message is accepted and deliver decides (mailsrv-deliver(8)).
// MAILSRV_QUOTA_TEMPFAIL makes the refusal temporary, as for deliver.
var (
	errMailboxFull     = reply(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full")
	errMailboxFullTemp = reply(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full, try again later")
)

// mailboxFull returns the refusal for a recipient whose mailbox is known
// to be full, or nil.
func (s *Session) mailboxFull(a address.Address) *smtp.SMTPError {
	cfg := s.srv.opts.Config
	targets, err := cfg.Resolve(a)
	if err != nil || len(targets) != 1 || targets[0].User == nil {
		return nil // an alias to several: the others still get it
	}
	u := *targets[0].User
	q, ok := u.Attrs["quota"]
	if !ok {
		return nil
	}
	limit, err := mailstore.ParseQuota(q)
	if err != nil || !(&mailstore.Store{Root: cfg.Mailbox(u)}).QuotaFull(limit) {
		return nil
	}
	s.log.Info("rcpt refused", "rcpt", a.String(), "reason", "mailbox full", "client", s.cc.ip)
	if mailstore.QuotaTempFailFromEnv() {
		return errMailboxFullTemp
	}
	return errMailboxFull
}
