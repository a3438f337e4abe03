package admin

import (
	"slices"
	"strings"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
)

// Alias is one source of etc/aliases with its targets.
type Alias struct {
	Source  string // "user@domain", or "@domain" for a catch-all
	Targets []string
}

// String formats the alias as a line of etc/aliases.
func (al Alias) String() string {
	return al.Source + ": " + strings.Join(al.Targets, ", ")
}

// parseTargets checks alias targets given on the command line and returns
// them in the form written to etc/aliases.
func parseTargets(args []string) ([]address.Address, error) {
	var out []address.Address
	for _, t := range args {
		a, err := address.Parse(strings.Trim(t, "<>"))
		if err != nil {
			return nil, fail(ErrData, "target %q: %w", t, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func aliasKey(src string) (string, error) {
	key, err := config.AliasKey(src)
	if err != nil {
		return "", fail(ErrData, "%w", err)
	}
	return key, nil
}

// AddAlias adds targets to the alias src, creating it if needed; targets it
// has already are kept once. src must be of a local domain, and every
// local target must already resolve (to a user, an alias or a catch-all),
// so that an alias cannot send mail into nowhere.
func (a *Admin) AddAlias(src string, targets []string) error {
	key, err := aliasKey(src)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return Usagef("alias %s: no target given", key)
	}
	add, err := parseTargets(targets)
	if err != nil {
		return err
	}
	return a.Cfg.Edit(config.FileAliases, 0644, func(lines []string) ([]string, error) {
		local, err := a.Cfg.IsLocal(domainOf(key))
		if err != nil {
			return nil, err
		}
		if !local {
			return nil, fail(ErrData, "alias %s: %s is not a local domain", key, domainOf(key))
		}
		have, err := aliasTargets(lines, key)
		if err != nil {
			return nil, err
		}
		for _, t := range add {
			if slices.ContainsFunc(have, func(h string) bool { return sameAddr(h, t) }) {
				continue
			}
			if err := a.checkTarget(key, t); err != nil {
				return nil, err
			}
			have = append(have, t.String())
		}
		return setAlias(lines, Alias{Source: key, Targets: have}), nil
	})
}

// checkTarget refuses a local target that resolves to nothing. A target
// naming the alias itself means the user's own mailbox, which must exist.
func (a *Admin) checkTarget(key string, t address.Address) error {
	local, err := a.Cfg.IsLocal(t.Domain)
	if err != nil || !local {
		return err
	}
	if t.Key() == key {
		if _, ok, err := a.Cfg.LookupUser(key); err != nil || ok {
			return err
		}
		return fail(ErrNotFound, "alias %s: target %s is the alias itself and not a user", key, t)
	}
	ok, err := a.Cfg.Exists(t)
	if err != nil {
		return fail(ErrData, "alias %s: target %s: %w", key, t, err)
	}
	if !ok {
		return fail(ErrNotFound, "alias %s: target %s is a local address with no user or alias", key, t)
	}
	return nil
}

// DelAlias removes targets from the alias src, and the alias when it has
// none left; with no targets it removes the whole alias.
func (a *Admin) DelAlias(src string, targets []string) error {
	key, err := aliasKey(src)
	if err != nil {
		return err
	}
	del, err := parseTargets(targets)
	if err != nil {
		return err
	}
	return a.Cfg.Edit(config.FileAliases, 0644, func(lines []string) ([]string, error) {
		have, err := aliasTargets(lines, key)
		if err != nil {
			return nil, err
		}
		if have == nil {
			return nil, fail(ErrNotFound, "alias %s does not exist", key)
		}
		if len(del) == 0 {
			out, _ := removeKey(config.FileAliases, lines, key)
			return out, nil
		}
		for _, t := range del {
			i := slices.IndexFunc(have, func(h string) bool { return sameAddr(h, t) })
			if i < 0 {
				return nil, fail(ErrNotFound, "alias %s has no target %s", key, t)
			}
			have = slices.Delete(have, i, i+1)
		}
		return setAlias(lines, Alias{Source: key, Targets: have}), nil
	})
}

// Aliases lists the aliases, sorted by source; of one domain when domain
// is not empty. Targets keep the order of the file.
func (a *Admin) Aliases(domain string) ([]Alias, error) {
	m, err := a.Cfg.Aliases()
	if err != nil {
		return nil, err
	}
	var out []Alias
	for _, k := range sortedKeys(m) {
		if domain == "" || domainOf(k) == strings.ToLower(domain) {
			out = append(out, Alias{Source: k, Targets: m[k]})
		}
	}
	return out, nil
}

// aliasTargets returns the targets of key over all its lines (the file may
// list a source more than once), or nil when it has none.
func aliasTargets(lines []string, key string) ([]string, error) {
	var out []string
	for _, l := range lines {
		if config.LineKey(config.FileAliases, l) != key {
			continue
		}
		_, targets, err := config.ParseAliasLine(strings.TrimSpace(l))
		if err != nil {
			return nil, err
		}
		out = append(out, targets...)
	}
	return out, nil
}

// setAlias puts al on one line, where its first line was (or at the end),
// and drops its other lines; with no targets it drops the alias.
func setAlias(lines []string, al Alias) []string {
	out := lines[:0:0]
	placed := len(al.Targets) == 0
	for _, l := range lines {
		if config.LineKey(config.FileAliases, l) != al.Source {
			out = append(out, l)
		} else if !placed {
			out = append(out, al.String())
			placed = true
		}
	}
	if !placed {
		out = append(out, al.String())
	}
	return out
}

// sameAddr compares a target from the file with one from the command line
// as lookups do: local part case-insensitively.
func sameAddr(have string, t address.Address) bool {
	h, err := address.Parse(have)
	return err == nil && h.Key() == t.Key()
}
