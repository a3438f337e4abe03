package admin

import (
	"strings"

	"mailsrv/pkg/config"
	"mailsrv/pkg/mailstore"
)

// SetQuota sets the quota= attribute of a user (a size such as 500M or 2G,
// see mailstore.ParseQuota), or removes it when size is "none". deliver
// refuses mail that would go over it and imapd reports it (QUOTA); the
// mailbox's maildirsize is rebuilt by the next delivery, which sees the
// new limit, so that the file keeps the mailbox owner's rights.
func (a *Admin) SetQuota(addr, size string) error {
	ua, err := parseUser(addr)
	if err != nil {
		return err
	}
	size = strings.ToUpper(strings.TrimSpace(size))
	if size != "NONE" {
		if _, err := mailstore.ParseQuota(size); err != nil {
			return fail(ErrData, "%w", err)
		}
	}
	return a.Cfg.Edit(config.FileUsers, 0640, func(lines []string) ([]string, error) {
		i := findKey(config.FileUsers, lines, ua.Key())
		if i < 0 {
			return nil, fail(ErrNotFound, "user %s does not exist", ua.Key())
		}
		u, err := config.ParseUserLine(strings.TrimSpace(lines[i]))
		if err != nil {
			return nil, err
		}
		if u.Attrs == nil {
			u.Attrs = map[string]string{}
		}
		if size == "NONE" {
			delete(u.Attrs, "quota")
		} else {
			u.Attrs["quota"] = size
		}
		lines[i] = u.Line()
		return lines, nil
	})
}
