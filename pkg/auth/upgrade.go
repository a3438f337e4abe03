package auth

import (
	"fmt"
	"maps"

	"mailsrv/pkg/config"
)

// NeedsRewrite reports whether the line of a user who has just logged in
// with password should be rewritten: the hash needs an upgrade
// (NeedsUpgrade), or the SCRAM-SHA-256 keys are missing or were made from
// another password (the hash was changed by hand).
func NeedsRewrite(u config.User, password string) bool {
	if NeedsUpgrade(u.Hash) {
		return true
	}
	v, ok := u.Attrs[AttrScramSHA256]
	if !ok {
		return true
	}
	k, err := ParseScramKeys(v)
	return err != nil || !scramKeysMatch(k, password)
}

// Upgrade rewrites the etc/users line of u, who has just logged in with
// password, with a new argon2id hash and SCRAM-SHA-256 keys (SetPassword),
// keeping its other attributes. The line is changed only if it still holds
// the hash u was checked against, so an administrator's change made in
// between wins. It returns the user as now stored. The process needs write
// access to etc/ (etc/users and its lock, etc/.lock).
func Upgrade(cfg *config.Config, u config.User, password string) (config.User, error) {
	hash, attrs, err := SetPassword(password)
	if err != nil {
		return u, err
	}
	key := u.Addr.Key()
	updated := u
	err = cfg.Edit(config.FileUsers, 0o600, func(lines []string) ([]string, error) {
		for i, line := range lines {
			if config.LineKey(config.FileUsers, line) != key {
				continue
			}
			cur, err := config.ParseUserLine(line)
			if err != nil || cur.Hash != u.Hash {
				return lines, nil // changed meanwhile: leave it
			}
			cur.Hash = hash
			cur.Attrs = maps.Clone(cur.Attrs)
			if cur.Attrs == nil {
				cur.Attrs = map[string]string{}
			}
			maps.Copy(cur.Attrs, attrs)
			lines[i] = cur.Line()
			updated = cur
			return lines, nil
		}
		return lines, nil
	})
	if err != nil {
		return u, fmt.Errorf("upgrade hash of %s: %w", key, err)
	}
	return updated, nil
}
