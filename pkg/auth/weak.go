package auth

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinPasswordLen is the shortest password CheckStrength accepts, in
// characters (not bytes).
const MinPasswordLen = 12

// ErrWeakPassword is wrapped by every refusal of CheckStrength; the
// message after it says why.
var ErrWeakPassword = errors.New("weak password")

// commonPasswords is a list of well-known passwords and keyboard patterns,
// one a line, lower case. Comments start with '#'.
//
//go:embed common-passwords.txt
var commonPasswordsText string

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		line = strings.ToLower(strings.TrimSpace(line))
		if line != "" && line[0] != '#' {
			m[line] = true
		}
	}
	return m
}()

// CheckStrength refuses a password that an attacker would try early: one
// shorter than MinPasswordLen characters, one in the list of common
// passwords (compared case-insensitively, also after undoing common letter
// substitutions and dropping a short prefix or suffix of digits and
// punctuation), one made of a short unit repeated ("aaaa...",
// "abcabc..."), a simple sequence ("abcdef...", "987654..."), or one that
// is or contains the user's local part or domain. user is the account's
// address, "local@domain"; it may be empty. The error wraps
// ErrWeakPassword and says which rule refused the password; it never
// contains the password.
func CheckStrength(password, user string) error {
	weak := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrWeakPassword}, a...)...)
	}
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLen {
		return weak("shorter than %d characters", MinPasswordLen)
	}
	lower := strings.ToLower(password)
	if unit := repeatedUnit(lower); unit == 1 {
		return weak("one character repeated")
	} else if unit > 0 {
		return weak("a short pattern repeated")
	}
	if isSequence(lower) {
		return weak("a simple sequence of characters")
	}
	for _, cand := range variants(lower) {
		if commonPasswords[cand] {
			return weak("in the list of common passwords")
		}
	}
	// Decoration is trimmed before and after undoing substitutions:
	// "he11owor1d!!" and "P4ssword2024" both come back to a list entry.
	for _, cand := range append(variants(trimDecoration(lower)), trimmedVariants(lower)...) {
		if commonPasswords[cand] {
			return weak("a common password with a few characters added")
		}
	}
	if part := userPart(lower, user); part != "" {
		return weak("contains the %s", part)
	}
	return nil
}

// repeatedUnit returns the length of the shortest unit, of at most 4
// characters, that s is made of ("abab" gives 2), or 0 if there is none.
func repeatedUnit(s string) int {
	r := []rune(s)
	for u := 1; u <= 4 && u < len(r); u++ {
		if len(r)%u != 0 {
			continue
		}
		ok := true
		for i := u; i < len(r) && ok; i++ {
			ok = r[i] == r[i-u]
		}
		if ok {
			return u
		}
	}
	return 0
}

// isSequence reports whether every character of s is the previous one
// plus or minus one ("abcdef", "987654", "89012345" with digits wrapping).
func isSequence(s string) bool {
	r := []rune(s)
	for _, step := range []rune{1, -1} {
		ok := true
		for i := 1; i < len(r) && ok; i++ {
			d := r[i] - r[i-1]
			ok = d == step || wrapsDigit(r[i-1], r[i], step)
		}
		if ok {
			return true
		}
	}
	return false
}

func wrapsDigit(a, b, step rune) bool {
	return step == 1 && a == '9' && b == '0' || step == -1 && a == '0' && b == '9'
}

// leet undoes the usual substitutions of digits and symbols for letters.
var leet = []*strings.Replacer{
	strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "i", "8", "b"),
	strings.NewReplacer("0", "o", "1", "l", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "l", "8", "b"),
}

// variants returns the lower-case password and its de-substituted forms.
func variants(lower string) []string {
	out := []string{lower}
	for _, r := range leet {
		if v := r.Replace(lower); v != lower {
			out = append(out, v)
		}
	}
	return out
}

func trimmedVariants(lower string) []string {
	var out []string
	for _, v := range variants(lower) {
		out = append(out, trimDecoration(v))
	}
	return out
}

// trimDecoration removes up to 4 digits, punctuation or spaces from each end
// ("Password2024!" becomes "password").
func trimDecoration(s string) string {
	deco := func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || r == ' ' }
	r := []rune(s)
	i, j := 0, len(r)
	for i < len(r) && i < 4 && deco(r[i]) {
		i++
	}
	for j > i && len(r)-j < 4 && deco(r[j-1]) {
		j--
	}
	return string(r[i:j])
}

// userPart returns which part of user ("local part" or "domain") the
// password contains, or "". Parts shorter than 3 characters are ignored:
// they occur in too many good passwords by chance.
func userPart(lower, user string) string {
	if user == "" {
		return ""
	}
	user = strings.ToLower(user)
	local, domain, _ := strings.Cut(user, "@")
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if len(local) >= 3 && strings.Contains(lower, local) {
		return "user's local part"
	}
	if domain == "" {
		return ""
	}
	if strings.Contains(lower, domain) {
		return "user's domain"
	}
	// The name the domain is registered under: "example" for
	// mail.example.org.
	if labels := strings.Split(domain, "."); len(labels) >= 2 {
		if l := labels[len(labels)-2]; len(l) >= 3 && strings.Contains(lower, l) {
			return "user's domain"
		}
	}
	return ""
}
