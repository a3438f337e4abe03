package config

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

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

// ErrUnsettled is returned instead of ErrNoSuchUser while etc/users or
// etc/aliases is being rewritten in place: an administrator's editor may
// have truncated the file and not yet written it all again, and a
// recipient refused for good (550, a bounce) in that moment would be mail
// lost. It is temporary: SMTP 451, a retry from the queue. Files replaced
// by a rename (mailctl, safefile) are never seen half-written and do not
// count.
var ErrUnsettled = errors.New("etc/users or etc/aliases changed a moment ago: recipient not certain yet")

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
		if errors.Is(err, ErrNoSuchUser) && c.unsettled() {
			return nil, fmt.Errorf("%s: %w", a.String(), ErrUnsettled)
		}
		return nil, err
	}
	return r.out, nil
}

// unsettled reports whether etc/users or etc/aliases was written in
// place less than mtimeSlack ago.
func (c *Config) unsettled() bool {
	for _, rel := range []string{FileUsers, FileAliases} {
		if rewrittenInPlace(c.Path(rel), time.Now()) {
			return true
		}
	}
	return false
}

// rewrittenInPlace reports whether path was modified less than mtimeSlack
// before now (or claims a future time) and is older than that
// modification: its birth time, where the file system keeps one, is more
// than a second before its modification time. A file made new and renamed
// into place is born when it is written.
func rewrittenInPlace(path string, now time.Time) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MTIME|unix.STATX_BTIME, &st); err != nil {
		return !errors.Is(err, unix.ENOENT)
	}
	mtime := time.Unix(st.Mtime.Sec, int64(st.Mtime.Nsec))
	if age := now.Sub(mtime); age >= mtimeSlack {
		return false
	}
	if st.Mask&unix.STATX_BTIME == 0 {
		return true // no birth time: be careful
	}
	born := time.Unix(st.Btime.Sec, int64(st.Btime.Nsec))
	return mtime.Sub(born) > time.Second
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
