package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckStrength(t *testing.T) {
	tests := []struct {
		name     string
		password string
		user     string
		reason   string // part of the error message; "" means accepted
	}{
		{name: "empty", password: "", reason: "shorter than 12"},
		{name: "11 chars", password: "Kq7#vLp2@xZ", reason: "shorter than 12"},
		{name: "12 chars accepted", password: "Kq7#vLp2@xZm"},
		{name: "12 runes, more bytes", password: "éàüöïçéàüöïx", user: ""},
		{name: "11 runes, 22 bytes", password: "éàüöïçéàüöï", reason: "shorter than 12"},
		{name: "passphrase", password: "violet tram ledger ninety", user: "bob@example.org"},
		{name: "one char repeated", password: "aaaaaaaaaaaaaaa", reason: "one character repeated"},
		{name: "repeated digit", password: "777777777777", reason: "one character repeated"},
		{name: "repeated unit", password: "abababababab", reason: "short pattern repeated"},
		{name: "repeated unit of 4", password: "Xy7!Xy7!Xy7!", reason: "short pattern repeated"},
		{name: "unit of 5 not refused by repetition", password: "Xy7!qXy7!qXy7!q"},
		{name: "ascending letters", password: "abcdefghijklm", reason: "sequence"},
		{name: "descending letters", password: "ZYXWVUTSRQPO", reason: "sequence"},
		{name: "digits wrapping", password: "789012345678", reason: "sequence"},
		{name: "descending digits", password: "987654321098", reason: "sequence"},
		{name: "list exact", password: "passwordpassword", reason: "list of common"},
		{name: "list case-insensitive", password: "QwErTyUiOpAsDf", reason: "list of common"},
		{name: "keyboard pattern", password: "1qaz2wsx3edc", reason: "list of common"},
		{name: "leet", password: "P@ssw0rdP@ssw0rd", reason: "list of common"},
		{name: "leet with 1 as l", password: "he11owor1d!!", reason: "common password"},
		{name: "decorated", password: "Password2024!", reason: "common password with a few"},
		{name: "decorated both ends", password: "!!12sunshine99", reason: "common password with a few"},
		{name: "word with long suffix is not list", password: "dragon#84729571"},
		{name: "local part", password: "bobsmith-garden-7", user: "bobsmith@example.org", reason: "local part"},
		{name: "local part any case", password: "My-BOBSMITH-home", user: "bobsmith@example.org", reason: "local part"},
		{name: "short local part ignored", password: "albatross-in-june", user: "al@example.org"},
		{name: "tag ignored in user", password: "kite bob42 runner", user: "bob42+x@example.org", reason: "local part"},
		{name: "full domain", password: "x9-example.org-x9", user: "ann@example.org", reason: "domain"},
		{name: "registered name", password: "Welcome-To-Example", user: "ann@mail.example.org", reason: "domain"},
		{name: "no user", password: "Welcome-To-Example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckStrength(tc.password, tc.user)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("CheckStrength(%q, %q) = %v, want nil", tc.password, tc.user, err)
				}
				return
			}
			if !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("CheckStrength(%q, %q) = %v, want ErrWeakPassword", tc.password, tc.user, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("CheckStrength(%q) = %q, want it to mention %q", tc.password, err, tc.reason)
			}
			if len(tc.password) >= 4 && strings.Contains(err.Error(), tc.password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestCommonList checks the embedded list: big enough, lower case, and
// every entry of MinPasswordLen characters or more is refused as is.
func TestCommonList(t *testing.T) {
	if n := len(commonPasswords); n < 300 {
		t.Fatalf("common password list has %d entries, want at least 300", n)
	}
	long := 0
	for pw := range commonPasswords {
		if strings.ToLower(pw) != pw {
			t.Errorf("entry %q is not lower case", pw)
		}
		if len([]rune(pw)) < MinPasswordLen {
			continue
		}
		long++
		if err := CheckStrength(pw, ""); !errors.Is(err, ErrWeakPassword) {
			t.Errorf("list entry %q accepted", pw)
		}
		if err := CheckStrength(strings.ToUpper(pw), ""); !errors.Is(err, ErrWeakPassword) {
			t.Errorf("list entry %q in upper case accepted", pw)
		}
	}
	if long < 20 {
		t.Errorf("only %d entries are long enough to matter alone", long)
	}
}
