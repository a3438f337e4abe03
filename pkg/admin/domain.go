package admin

import (
	"slices"
	"strings"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
)

// parseDomainName checks a domain given on the command line. Address
// literals ("[192.0.2.1]") are refused: a local domain names directories
// under mail/.
func parseDomainName(s string) (string, error) {
	d, err := address.ParseDomain(s)
	if err != nil {
		return "", fail(ErrData, "domain %q: %w", s, err)
	}
	if strings.HasPrefix(d, "[") {
		return "", fail(ErrData, "domain %q: an address literal cannot be a local domain", s)
	}
	return d, nil
}

// AddDomain adds a local domain to etc/domains. Adding one that is listed
// already is an error (ErrData).
func (a *Admin) AddDomain(name string) error {
	d, err := parseDomainName(name)
	if err != nil {
		return err
	}
	return a.Cfg.Edit(config.FileDomains, 0644, func(lines []string) ([]string, error) {
		if slices.ContainsFunc(lines, func(l string) bool { return config.LineKey(config.FileDomains, l) == d }) {
			return nil, fail(ErrData, "domain %s already exists", d)
		}
		return append(lines, d), nil
	})
}

// DelDomain removes a local domain. It refuses while users or aliases of
// the domain exist, unless force is set; then it removes those users and
// aliases too (their mailboxes stay). The domain goes first, so that mail
// for it is no longer accepted while the rest is cleaned up.
func (a *Admin) DelDomain(name string, force bool) error {
	d, err := parseDomainName(name)
	if err != nil {
		return err
	}
	err = a.Cfg.Edit(config.FileDomains, 0644, func(lines []string) ([]string, error) {
		out, n := removeKey(config.FileDomains, lines, d)
		if n == 0 {
			return nil, fail(ErrNotFound, "domain %s does not exist", d)
		}
		if !force {
			if err := a.checkDomainEmpty(d); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	if err != nil || !force {
		return err
	}
	inDomain := func(key string) bool { return domainOf(key) == d }
	if err := a.Cfg.Edit(config.FileAliases, 0644, removeKeys(config.FileAliases, inDomain)); err != nil {
		return err
	}
	return a.Cfg.Edit(config.FileUsers, 0640, removeKeys(config.FileUsers, inDomain))
}

// checkDomainEmpty refuses when users or aliases of domain d exist.
func (a *Admin) checkDomainEmpty(d string) error {
	users, err := a.Cfg.Users()
	if err != nil {
		return err
	}
	aliases, err := a.Cfg.Aliases()
	if err != nil {
		return err
	}
	var nu, na int
	for k := range users {
		if domainOf(k) == d {
			nu++
		}
	}
	for k := range aliases {
		if domainOf(k) == d {
			na++
		}
	}
	if nu+na > 0 {
		return fail(ErrData, "domain %s still has %d users and %d aliases (remove them first, or use --force)", d, nu, na)
	}
	return nil
}

// Domains returns the local domains, sorted.
func (a *Admin) Domains() ([]string, error) {
	m, err := a.Cfg.Domains()
	if err != nil {
		return nil, err
	}
	return sortedKeys(m), nil
}

// domainOf returns the domain of a lookup key ("user@dom" or "@dom").
func domainOf(key string) string {
	return key[strings.LastIndexByte(key, '@')+1:]
}

// removeKey drops the lines of a control file that define key, and says
// how many there were.
func removeKey(rel string, lines []string, key string) ([]string, int) {
	out := lines[:0:0]
	for _, l := range lines {
		if config.LineKey(rel, l) != key {
			out = append(out, l)
		}
	}
	return out, len(lines) - len(out)
}

// removeKeys returns an edit that drops every line whose key matches.
func removeKeys(rel string, match func(key string) bool) func([]string) ([]string, error) {
	return func(lines []string) ([]string, error) {
		out := lines[:0:0]
		for _, l := range lines {
			if k := config.LineKey(rel, l); k == "" || !match(k) {
				out = append(out, l)
			}
		}
		return out, nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
