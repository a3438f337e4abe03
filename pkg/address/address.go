// Package address parses, checks and normalizes the mail addresses that
// cross the network: SMTP envelope paths (RFC 5321 section 4.1.2) and the
// addresses named in control files. It owns the one definition of what a
// local part and a domain may contain, so that smtpd, the queue, deliver and
// mailctl agree on it.
package address

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Limits from RFC 5321 section 4.5.3.1.
const (
	MaxLocalLen  = 64
	MaxDomainLen = 255
	MaxPathLen   = 256
)

// Address is a parsed mailbox. The zero value is the null reverse-path <>.
type Address struct {
	Local  string // local part, as given (quotes removed)
	Domain string // domain, lower case, no trailing dot
}

// Errors returned by Parse.
var (
	ErrEmpty    = errors.New("empty address")
	ErrTooLong  = errors.New("address too long")
	ErrNoDomain = errors.New("address has no domain")
	ErrSyntax   = errors.New("address syntax error")
)

// IsNull reports whether a is the null reverse-path <>.
func (a Address) IsNull() bool { return a.Local == "" && a.Domain == "" }

// String returns local@domain, quoting the local part when it needs it.
func (a Address) String() string {
	if a.IsNull() {
		return ""
	}
	local := a.Local
	if needsQuote(local) {
		local = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(local) + `"`
	}
	return local + "@" + a.Domain
}

// Key returns the form used to look the address up in control files: the
// local part folded to lower case (our own users are case-insensitive) and
// the domain.
func (a Address) Key() string {
	return strings.ToLower(a.Local) + "@" + a.Domain
}

// StripTag removes a sub-address ("user+tag" becomes "user") when the local
// part contains sep. It returns the address unchanged otherwise.
func (a Address) StripTag(sep string) (Address, bool) {
	if sep == "" {
		return a, false
	}
	i := strings.Index(a.Local, sep)
	if i <= 0 {
		return a, false
	}
	return Address{Local: a.Local[:i], Domain: a.Domain}, true
}

// Parse parses "local@domain" (an SMTP path without its angle brackets, or
// an address from a control file). An empty string is an error: callers
// that accept the null path check for it first.
func Parse(s string) (Address, error) {
	if s == "" {
		return Address{}, ErrEmpty
	}
	if len(s) > MaxPathLen {
		return Address{}, ErrTooLong
	}
	if !utf8.ValidString(s) {
		return Address{}, ErrSyntax
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, ErrNoDomain
	}
	local, err := parseLocal(s[:at])
	if err != nil {
		return Address{}, err
	}
	domain, err := ParseDomain(s[at+1:])
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// ParseDomain checks a domain name (or an address literal such as
// [127.0.0.1]) and returns it in lower case without a trailing dot.
func ParseDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", ErrNoDomain
	}
	if !utf8.ValidString(d) {
		return "", ErrSyntax
	}
	if len(d) > MaxDomainLen {
		return "", ErrTooLong
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' || strings.ContainsAny(d[1:len(d)-1], "[]\\ \t") || !printable(d) {
			return "", ErrSyntax
		}
		return strings.ToLower(d), nil
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return "", ErrSyntax
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "", ErrSyntax
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' ||
				r >= 'A' && r <= 'Z' || r >= 0x80) {
				return "", ErrSyntax
			}
		}
	}
	return strings.ToLower(d), nil
}

func parseLocal(l string) (string, error) {
	if l == "" {
		return "", ErrSyntax
	}
	if l[0] == '"' {
		return parseQuoted(l)
	}
	if len(l) > MaxLocalLen {
		return "", ErrTooLong
	}
	if l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return "", ErrSyntax
	}
	for _, r := range l {
		if !atext(r) && r != '.' {
			return "", ErrSyntax
		}
	}
	return l, nil
}

// parseQuoted handles a quoted-string local part (RFC 5321 section 4.1.2).
func parseQuoted(l string) (string, error) {
	if len(l) < 2 || l[len(l)-1] != '"' {
		return "", ErrSyntax
	}
	var b strings.Builder
	in := l[1 : len(l)-1]
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\\':
			i++
			if i == len(in) || in[i] < 32 || in[i] == 127 {
				return "", ErrSyntax
			}
			b.WriteByte(in[i])
		case c == '"' || c < 32 || c == 127:
			return "", ErrSyntax
		default:
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 || b.Len() > MaxLocalLen {
		return "", ErrSyntax
	}
	return b.String(), nil
}

// atext is RFC 5322's atext, widened to UTF-8 by RFC 6531.
func atext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r >= 0x80:
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func needsQuote(l string) bool {
	if l == "" || l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return true
	}
	for _, r := range l {
		if !atext(r) && r != '.' {
			return true
		}
	}
	return false
}

func printable(s string) bool {
	for _, r := range s {
		if r < 32 || r == 127 {
			return false
		}
	}
	return true
}
