package config

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	"mailsrv/pkg/address"
)

// MaxLineLen is the longest line a control file may have.
const MaxLineLen = 8192

// User is one line of etc/users: "address:hash[:key=value ...]".
type User struct {
	Addr  address.Address
	Hash  string            // password hash, PHC string ($argon2id$...) or {SCHEME}...
	Attrs map[string]string // later fields, such as quota=
}

// Line formats u as it is written in etc/users.
func (u User) Line() string {
	var b strings.Builder
	b.WriteString(u.Addr.Key())
	b.WriteByte(':')
	b.WriteString(u.Hash)
	if len(u.Attrs) > 0 {
		b.WriteByte(':')
		b.WriteString(formatAttrs(u.Attrs))
	}
	return b.String()
}

// eachLine calls fn for every line that is not blank or a comment, with its
// number. Leading and trailing white space is removed.
func eachLine(data []byte, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < 32 && r != '\t' || r == 127 }) {
			return fmt.Errorf("line %d: control character", n)
		}
		if err := fn(n, line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("after line %d: %w", n, err)
	}
	return nil
}

func parseMe(data []byte) (string, error) {
	var me string
	err := eachLine(data, func(_ int, line string) error {
		if me != "" {
			return fmt.Errorf("more than one host name")
		}
		d, err := address.ParseDomain(line)
		me = d
		return err
	})
	return me, err
}

func parseDomains(data []byte) (map[string]bool, error) {
	m := map[string]bool{}
	err := eachLine(data, func(_ int, line string) error {
		d, err := address.ParseDomain(line)
		if err != nil {
			return fmt.Errorf("domain %q: %w", line, err)
		}
		m[d] = true
		return nil
	})
	return m, err
}

// ParseUserLine parses one line of etc/users.
func ParseUserLine(line string) (User, error) {
	addr, rest, ok := strings.Cut(line, ":")
	if !ok {
		return User{}, fmt.Errorf("want address:hash")
	}
	a, err := address.Parse(addr)
	if err != nil {
		return User{}, fmt.Errorf("address %q: %w", addr, err)
	}
	if err := CheckUserLocal(a.Local); err != nil {
		return User{}, err
	}
	hash, attrs, _ := strings.Cut(rest, ":")
	if strings.ContainsAny(hash, " \t") {
		return User{}, fmt.Errorf("white space in hash")
	}
	u := User{Addr: address.Address{Local: strings.ToLower(a.Local), Domain: a.Domain}, Hash: hash}
	if u.Attrs, err = parseAttrs(attrs); err != nil {
		return User{}, err
	}
	return u, nil
}

// CheckUserLocal restricts the local part of a user, which names a
// directory: lower-case letters, digits, '.', '_' and '-', not starting with
// a dot. '+' is the sub-address separator and so is refused too.
func CheckUserLocal(l string) error {
	if l == "" || l[0] == '.' || l[0] == '-' || strings.Contains(l, "..") {
		return fmt.Errorf("user name %q: must start with a letter or digit", l)
	}
	for _, r := range strings.ToLower(l) {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("user name %q: only a-z 0-9 . _ - allowed", l)
		}
	}
	return nil
}

func parseAttrs(s string) (map[string]string, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("attribute %q: want key=value", f)
		}
		m[k] = v
	}
	return m, nil
}

func formatAttrs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func parseUsers(data []byte) (map[string]User, error) {
	m := map[string]User{}
	err := eachLine(data, func(_ int, line string) error {
		u, err := ParseUserLine(line)
		if err != nil {
			return err
		}
		if _, dup := m[u.Addr.Key()]; dup {
			return fmt.Errorf("user %s listed twice", u.Addr.Key())
		}
		m[u.Addr.Key()] = u
		return nil
	})
	return m, err
}

// ParseAliasLine parses "source: target, target ...". The source is an
// address or "@domain" (catch-all); targets are addresses. It returns the
// source key and the targets.
func ParseAliasLine(line string) (string, []string, error) {
	src, rest, ok := strings.Cut(line, ":")
	if !ok {
		return "", nil, fmt.Errorf("want source: target, ...")
	}
	key, err := AliasKey(strings.TrimSpace(src))
	if err != nil {
		return "", nil, err
	}
	var targets []string
	for _, t := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		a, err := address.Parse(strings.Trim(t, "<>"))
		if err != nil {
			return "", nil, fmt.Errorf("target %q: %w", t, err)
		}
		targets = append(targets, a.String())
	}
	if len(targets) == 0 {
		return "", nil, fmt.Errorf("alias %s has no target", key)
	}
	return key, targets, nil
}

// AliasKey checks an alias source and returns its lookup key.
func AliasKey(src string) (string, error) {
	if strings.HasPrefix(src, "@") {
		d, err := address.ParseDomain(src[1:])
		if err != nil {
			return "", fmt.Errorf("catch-all %q: %w", src, err)
		}
		return "@" + d, nil
	}
	a, err := address.Parse(src)
	if err != nil {
		return "", fmt.Errorf("alias %q: %w", src, err)
	}
	return a.Key(), nil
}

func parseAliases(data []byte) (map[string][]string, error) {
	m := map[string][]string{}
	err := eachLine(data, func(_ int, line string) error {
		key, targets, err := ParseAliasLine(line)
		if err != nil {
			return err
		}
		m[key] = append(m[key], targets...)
		return nil
	})
	return m, err
}
