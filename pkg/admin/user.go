package admin

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/maildir"
)

// parseUser checks a user's address as given on the command line.
func parseUser(s string) (address.Address, error) {
	a, err := address.Parse(s)
	if err != nil {
		return address.Address{}, fail(ErrData, "address %q: %w", s, err)
	}
	if err := config.CheckUserLocal(a.Local); err != nil {
		return address.Address{}, fail(ErrData, "address %q: %w", s, err)
	}
	a.Local = strings.ToLower(a.Local)
	return a, nil
}

// ParseAttrs checks "key=value" arguments for a user line.
func ParseAttrs(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(args))
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || k == "" || strings.ContainsAny(arg, ": \t") {
			return nil, fail(ErrData, "attribute %q: want key=value, without ':' or spaces", arg)
		}
		m[k] = v
	}
	return m, nil
}

// AddUser adds a user of a local domain with the given password, which
// must pass auth.CheckStrength, and creates the Maildir++ mailbox. The
// mailbox is made before the line is written, so that a user who exists
// always has one.
func (a *Admin) AddUser(addr, password string, attrs map[string]string) error {
	u, err := a.newUser(addr, password)
	if err != nil {
		return err
	}
	if len(attrs) > 0 {
		maps.Copy(u.Attrs, attrs) // the administrator's attributes win
	}
	return a.Cfg.Edit(config.FileUsers, 0640, func(lines []string) ([]string, error) {
		if err := a.checkLocal(u.Addr.Domain); err != nil {
			return nil, err
		}
		if findKey(config.FileUsers, lines, u.Addr.Key()) >= 0 {
			return nil, fail(ErrData, "user %s already exists", u.Addr.Key())
		}
		if err := maildir.Create(a.Cfg.Mailbox(u)); err != nil {
			return nil, fail(ErrCantCreate, "mailbox of %s: %w", u.Addr.Key(), err)
		}
		if err := ownLikeMailDir(a.Cfg.MailDir(), a.Cfg.Mailbox(u)); err != nil {
			return nil, fail(ErrCantCreate, "mailbox of %s: %w", u.Addr.Key(), err)
		}
		return append(lines, u.Line()), nil
	})
}

// CheckUser makes the checks of AddUser (exists false) or SetPassword
// (exists true) that need no password, so that mailctl can refuse before
// asking for one. The edit checks again under the lock.
func (a *Admin) CheckUser(addr string, exists bool) error {
	ua, err := parseUser(addr)
	if err != nil {
		return err
	}
	_, found, err := a.Cfg.LookupUser(ua.Key())
	switch {
	case err != nil:
		return err
	case exists && !found:
		return fail(ErrNotFound, "user %s does not exist", ua.Key())
	case exists:
		return nil
	case found:
		return fail(ErrData, "user %s already exists", ua.Key())
	}
	return a.checkLocal(ua.Domain)
}

func (a *Admin) checkLocal(domain string) error {
	local, err := a.Cfg.IsLocal(domain)
	if err != nil {
		return err
	}
	if !local {
		return fail(ErrData, "domain %s is not a local domain (add it with: mailctl domain add %s)", domain, domain)
	}
	return nil
}

// AliasesTo returns the sources of the aliases that name addr as a target,
// sorted: after `user del`, mail to them fails unless a catch-all takes
// the address.
func (a *Admin) AliasesTo(addr string) ([]string, error) {
	ua, err := address.Parse(addr)
	if err != nil {
		return nil, fail(ErrData, "address %q: %w", addr, err)
	}
	m, err := a.Cfg.Aliases()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, src := range sortedKeys(m) {
		if slices.ContainsFunc(m[src], func(t string) bool { return sameAddr(t, ua) }) {
			out = append(out, src)
		}
	}
	return out, nil
}

// newUser checks an address and a password and hashes the password. The
// hash is made before the lock is taken: it costs a tenth of a second.
func (a *Admin) newUser(addr, password string) (config.User, error) {
	ua, err := parseUser(addr)
	if err != nil {
		return config.User{}, err
	}
	if err := auth.CheckStrength(password, ua.Key()); err != nil {
		return config.User{}, err
	}
	// The argon2id hash, and the SCRAM-SHA-256 keys beside it.
	hash, attrs, err := auth.SetPassword(password)
	if err != nil {
		return config.User{}, fmt.Errorf("hash password: %w", err)
	}
	return config.User{Addr: ua, Hash: hash, Attrs: attrs}, nil
}

// SetPassword replaces a user's password hash and SCRAM keys, keeping its
// other attributes.
func (a *Admin) SetPassword(addr, password string) error {
	nu, err := a.newUser(addr, password)
	if err != nil {
		return err
	}
	return a.Cfg.Edit(config.FileUsers, 0640, func(lines []string) ([]string, error) {
		i := findKey(config.FileUsers, lines, nu.Addr.Key())
		if i < 0 {
			return nil, fail(ErrNotFound, "user %s does not exist", nu.Addr.Key())
		}
		old, err := config.ParseUserLine(strings.TrimSpace(lines[i]))
		if err != nil {
			return nil, err
		}
		old.Hash = nu.Hash
		if old.Attrs == nil {
			old.Attrs = map[string]string{}
		}
		maps.Copy(old.Attrs, nu.Attrs)
		lines[i] = old.Line()
		return lines, nil
	})
}

// DelUser removes a user. Its mailbox stays unless purge is set; then it is
// removed after the user's line is gone, so nothing delivers into it.
func (a *Admin) DelUser(addr string, purge bool) error {
	ua, err := parseUser(addr)
	if err != nil {
		return err
	}
	err = a.Cfg.Edit(config.FileUsers, 0640, func(lines []string) ([]string, error) {
		out, n := removeKey(config.FileUsers, lines, ua.Key())
		if n == 0 {
			return nil, fail(ErrNotFound, "user %s does not exist", ua.Key())
		}
		return out, nil
	})
	if err != nil || !purge {
		return err
	}
	box := a.Cfg.Mailbox(config.User{Addr: ua})
	if rel, err := filepath.Rel(a.Cfg.MailDir(), box); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fail(ErrData, "mailbox %s is not below %s: not removing it", box, a.Cfg.MailDir())
	}
	if err := os.RemoveAll(box); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove mailbox of %s: %w", ua.Key(), err)
	}
	return nil
}

// UserInfo is one user as listed: no hash, and no SCRAM keys (a server
// key lets its holder pose as this server to the user).
type UserInfo struct {
	Addr  string
	Attrs map[string]string
}

// String formats the user for `mailctl user list`: the address, then its
// attributes in key order.
func (u UserInfo) String() string {
	var b strings.Builder
	b.WriteString(u.Addr)
	for _, k := range sortedKeys(u.Attrs) {
		if k == auth.AttrScramSHA256 {
			continue
		}
		b.WriteString(" " + k + "=" + u.Attrs[k])
	}
	return b.String()
}

// Users lists the users, sorted by address; of one domain when domain is
// not empty.
func (a *Admin) Users(domain string) ([]UserInfo, error) {
	m, err := a.Cfg.Users()
	if err != nil {
		return nil, err
	}
	var out []UserInfo
	for _, k := range sortedKeys(m) {
		if domain == "" || domainOf(k) == strings.ToLower(domain) {
			out = append(out, UserInfo{Addr: k, Attrs: m[k].Attrs})
		}
	}
	return out, nil
}

// findKey returns the index of the first line defining key, or -1.
func findKey(rel string, lines []string, key string) int {
	for i, l := range lines {
		if config.LineKey(rel, l) == key {
			return i
		}
	}
	return -1
}
