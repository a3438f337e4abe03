package imap

import (
	"strconv"

	"mailsrv/pkg/mailstore"
)

// QUOTA (RFC 9208) with the STORAGE resource: one quota root, "", for the
// whole mailbox, its limit the quota= attribute of the user in etc/users.
// Limits are set by the administrator (mailctl), so SETQUOTA is refused.
func init() {
	commands["GETQUOTA"] = handler{cmdGetQuota, authed}
	commands["GETQUOTAROOT"] = handler{cmdGetQuotaRoot, authed}
	commands["SETQUOTA"] = handler{cmdSetQuota, authed}
}

// quotaLimit returns the user's storage limit in bytes, or -1 for none.
func (s *session) quotaLimit() (int64, error) {
	q, ok := s.user.Attrs["quota"]
	if !ok {
		return -1, nil
	}
	return mailstore.ParseQuota(q)
}

func (s *session) writeQuota() error {
	limit, err := s.quotaLimit()
	if err != nil || limit < 0 {
		return err
	}
	// Maildir++: every writer (deliver, imapd, pop3d) appends its changes
	// to maildirsize, rebuilt by a scan when missing or in doubt; a client
	// asking at every SELECT (Thunderbird) costs a small read.
	use, err := s.store.Quota(limit, 0)
	if err != nil {
		return err
	}
	// RFC 9208 section 5.1: STORAGE is counted in units of 1024 octets.
	s.w.Raw(`* QUOTA "" (STORAGE ` + strconv.FormatInt((use.Size+1023)/1024, 10) + " " +
		strconv.FormatInt(limit/1024, 10) + ")\r\n")
	return nil
}

// RFC 9208 section 4.2.
func cmdGetQuota(s *session, c *command) error {
	root, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	limit, err := s.quotaLimit()
	if err != nil {
		return err
	}
	if root != "" || limit < 0 {
		return no("NONEXISTENT", "no such quota root")
	}
	return s.writeQuota()
}

// RFC 9208 section 4.3.
func cmdGetQuotaRoot(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	f, err := s.store.Folder(name)
	if err != nil {
		return storeError(err)
	}
	limit, err := s.quotaLimit()
	if err != nil {
		return err
	}
	s.w.Raw("* QUOTAROOT ").Mailbox(f.Name)
	if limit >= 0 {
		s.w.Raw(` ""`)
	}
	s.w.CRLF()
	return s.writeQuota()
}

func cmdSetQuota(s *session, c *command) error {
	return no("NOPERM", "quotas are set by the administrator")
}

// checkQuota refuses to add bytes beyond the user's quota (RFC 9208
// section 4.1.1, OVERQUOTA).
func (s *session) checkQuota(add int64) error {
	limit, err := s.quotaLimit()
	if err != nil || limit < 0 {
		return err
	}
	use, err := s.store.Quota(limit, add)
	if err != nil {
		return err
	}
	if use.Over(add) {
		return no("OVERQUOTA", "mailbox is over its quota")
	}
	return nil
}
