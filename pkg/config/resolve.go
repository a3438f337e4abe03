package config

import (
	"errors"
	"fmt"

	"mailsrv/pkg/address"
)

// MaxAliasDepth bounds alias expansion, so that a loop in etc/aliases ends.
const MaxAliasDepth = 10

// MaxExpansion bounds the number of addresses one recipient expands to.
const MaxExpansion = 1000

// TagSeparator separates a user from a sub-address tag: user+tag@domain.
const TagSeparator = "+"

// ErrAliasLoop is returned when expansion goes deeper than MaxAliasDepth.
var ErrAliasLoop = errors.New("alias loop or nesting too deep")

// Target is one final destination of a recipient.
type Target struct {
	// Addr is the address delivered to: a local user's (as addressed,
	// with its tag) or a remote one.
	Addr address.Address
	// User is set for local deliveries.
	User *User
}

// Local reports whether the target is a local mailbox.
func (t Target) Local() bool { return t.User != nil }

// Resolve expands a recipient through aliases, sub-addresses and catch-alls
// into its final targets. An address of a local domain that names nothing
// gives ErrNoSuchUser; an address of another domain is its own, remote,
// target.
func (c *Config) Resolve(a address.Address) ([]Target, error) {
	r := resolver{c: c, seen: map[string]bool{}, done: map[string]bool{}}
	if err := r.expand(a, 0); err != nil {
		return nil, err
	}
	return r.out, nil
}

// Exists reports whether a recipient resolves to at least one target,
// without returning them: the check smtpd makes at RCPT time.
func (c *Config) Exists(a address.Address) (bool, error) {
	_, err := c.Resolve(a)
	if errors.Is(err, ErrNoSuchUser) {
		return false, nil
	}
	return err == nil, err
}

type resolver struct {
	c    *Config
	seen map[string]bool // aliases being expanded, against loops
	done map[string]bool // targets already emitted, against duplicates
	out  []Target
}

func (r *resolver) emit(t Target) error {
	k := t.Addr.Key()
	if r.done[k] {
		return nil
	}
	if len(r.out) >= MaxExpansion {
		return fmt.Errorf("recipient expands to more than %d addresses", MaxExpansion)
	}
	r.done[k] = true
	r.out = append(r.out, t)
	return nil
}

func (r *resolver) expand(a address.Address, depth int) error {
	if depth > MaxAliasDepth {
		return ErrAliasLoop
	}
	local, err := r.c.IsLocal(a.Domain)
	if err != nil {
		return err
	}
	if !local {
		return r.emit(Target{Addr: a})
	}
	aliases, err := r.c.Aliases()
	if err != nil {
		return err
	}
	base, tagged := a.StripTag(TagSeparator)
	// An alias naming itself ("bob: bob, alice") means bob's own mailbox.
	for _, key := range []string{a.Key(), base.Key()} {
		if targets, ok := aliases[key]; ok && !r.seen[key] {
			return r.expandAll(key, targets, depth)
		}
		if !tagged {
			break
		}
	}
	if u, ok, err := r.c.LocalUser(a); err != nil || ok {
		if err != nil {
			return err
		}
		return r.emit(Target{Addr: a, User: &u})
	}
	if targets, ok := aliases["@"+a.Domain]; ok && !r.seen["@"+a.Domain] {
		return r.expandAll("@"+a.Domain, targets, depth)
	}
	return fmt.Errorf("%s: %w", a.String(), ErrNoSuchUser)
}

func (r *resolver) expandAll(key string, targets []string, depth int) error {
	r.seen[key] = true
	defer delete(r.seen, key)
	for _, t := range targets {
		ta, err := address.Parse(t)
		if err != nil {
			return fmt.Errorf("alias %s: target %q: %w", key, t, err)
		}
		if err := r.expand(ta, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// LocalUser finds the user an address of a local domain delivers to without
// aliases: the address itself, or the address without its +tag.
func (c *Config) LocalUser(a address.Address) (User, bool, error) {
	if u, ok, err := c.LookupUser(a.Key()); err != nil || ok {
		return u, ok, err
	}
	if base, tagged := a.StripTag(TagSeparator); tagged {
		return c.LookupUser(base.Key())
	}
	return User{}, false, nil
}
