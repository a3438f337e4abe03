package address

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		in         string
		local, dom string
		err        error
		str        string // String(), when it differs from in
	}{
		{in: "bob@example.org", local: "bob", dom: "example.org"},
		{in: "Bob.Smith@Example.ORG", local: "Bob.Smith", dom: "example.org", str: "Bob.Smith@example.org"},
		{in: "bob+tag@example.org.", local: "bob+tag", dom: "example.org", str: "bob+tag@example.org"},
		{in: "!#$%&'*+-/=?^_`{|}~@x.example", local: "!#$%&'*+-/=?^_`{|}~", dom: "x.example"},
		{in: "jörg@bücher.example", local: "jörg", dom: "bücher.example"},
		{in: `"john doe"@example.org`, local: "john doe", dom: "example.org"},
		{in: `"a\"b\\c"@example.org`, local: `a"b\c`, dom: "example.org"},
		{in: `"a@b"@example.org`, local: "a@b", dom: "example.org"},
		{in: `".bob"@example.org`, local: ".bob", dom: "example.org"},
		{in: `"bob"@example.org`, local: "bob", dom: "example.org", str: "bob@example.org"},
		{in: "bob@[192.0.2.1]", local: "bob", dom: "[192.0.2.1]"},
		{in: "bob@[IPv6:2001:DB8::1]", local: "bob", dom: "[ipv6:2001:db8::1]", str: "bob@[ipv6:2001:db8::1]"},
		{in: "under_score@a_b.example", local: "under_score", dom: "a_b.example"},
		{in: long(64) + "@x.example", local: long(64), dom: "x.example"},
		{in: "", err: ErrEmpty},
		{in: "bob", err: ErrNoDomain},
		{in: "bob@", err: ErrNoDomain},
		{in: "bob@.", err: ErrNoDomain},
		{in: "@example.org", err: ErrSyntax},
		{in: long(65) + "@x.example", err: ErrTooLong},
		{in: "a@" + strings.Repeat("b.", 128) + "c", err: ErrTooLong},
		{in: "a@" + long(64) + ".example", err: ErrSyntax},
		{in: long(60) + "@" + strings.Repeat("abcdefghi.", 19) + "example", err: ErrTooLong},
		{in: ".bob@example.org", err: ErrSyntax},
		{in: "bob.@example.org", err: ErrSyntax},
		{in: "a..b@example.org", err: ErrSyntax},
		{in: "a b@example.org", err: ErrSyntax},
		{in: "a(b)@example.org", err: ErrSyntax},
		{in: "a,b@example.org", err: ErrSyntax},
		{in: "a@b@example.org", err: ErrSyntax},
		{in: "bob@exa mple.org", err: ErrSyntax},
		{in: "bob@-example.org", err: ErrSyntax},
		{in: "bob@example-.org", err: ErrSyntax},
		{in: "bob@example..org", err: ErrSyntax},
		{in: "bob@exa/mple.org", err: ErrSyntax},
		{in: "bob@[192.0.2.1", err: ErrSyntax},
		{in: "bob@[1]2]", err: ErrSyntax},
		{in: "bob@[a b]", err: ErrSyntax},
		{in: "bob@[a\x01]", err: ErrSyntax},
		{in: `"unterminated@example.org`, err: ErrSyntax},
		{in: `""@example.org`, err: ErrSyntax},
		{in: `"a\`, err: ErrNoDomain},
		{in: `"a\"@example.org`, err: ErrSyntax},
		{in: "\"a\x01\"@example.org", err: ErrSyntax},
		{in: "\"a\\\x01\"@example.org", err: ErrSyntax},
		{in: "\"" + long(65) + "\"@example.org", err: ErrSyntax},
		{in: "bob\xff@example.org", err: ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			a, err := Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if err != nil {
				return
			}
			if a.Local != tc.local || a.Domain != tc.dom {
				t.Errorf("Parse(%q) = %q @ %q, want %q @ %q", tc.in, a.Local, a.Domain, tc.local, tc.dom)
			}
			want := tc.str
			if want == "" {
				want = tc.in
			}
			if a.String() != want {
				t.Errorf("String() = %q, want %q", a.String(), want)
			}
		})
	}
}

func TestKeyStripTagNull(t *testing.T) {
	a := Address{Local: "Bob+News+x", Domain: "example.org"}
	if k := a.Key(); k != "bob+news+x@example.org" {
		t.Errorf("Key = %q", k)
	}
	tests := []struct {
		local, sep, want string
		tagged           bool
	}{
		{"Bob+News+x", "+", "Bob", true},
		{"bob", "+", "bob", false},
		{"+bob", "+", "+bob", false}, // no user before the tag
		{"bob+", "+", "bob", true},
		{"bob-ext", "-", "bob", true},
		{"bob+x", "", "bob+x", false},
	}
	for _, tc := range tests {
		b, ok := Address{Local: tc.local, Domain: "example.org"}.StripTag(tc.sep)
		if b.Local != tc.want || ok != tc.tagged || b.Domain != "example.org" {
			t.Errorf("StripTag(%q, %q) = %q %v, want %q %v", tc.local, tc.sep, b.Local, ok, tc.want, tc.tagged)
		}
	}
	var null Address
	if !null.IsNull() || null.String() != "" {
		t.Errorf("zero Address: IsNull %v, String %q", null.IsNull(), null.String())
	}
	if (Address{Local: "a", Domain: "b"}).IsNull() {
		t.Error("a@b is null")
	}
}

func TestParseDomain(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"Example.ORG.", "example.org", nil},
		{"localhost", "localhost", nil},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", nil},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example", nil},
		{"", "", ErrNoDomain},
		{".", "", ErrNoDomain},
		{strings.Repeat("a.", 128) + "a", "", ErrTooLong},
		{strings.Repeat("a.", 127) + "a.", strings.Repeat("a.", 127) + "a", nil},
		{strings.Repeat("a", 64) + ".example", "", ErrSyntax},
		{"a..example", "", ErrSyntax},
		{".example", "", ErrSyntax},
		{"-a.example", "", ErrSyntax},
		{"a!.example", "", ErrSyntax},
	}
	for _, tc := range tests {
		got, err := ParseDomain(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParse checks, for any input, that Parse does not panic, that what it
// accepts respects the limits of RFC 5321 section 4.5.3.1, and that String
// gives a form Parse reads back to the same address.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"bob@example.org", "Bob+tag@Example.ORG.", `"john doe"@example.org`, `"a\"b"@x`,
		"bob@[192.0.2.1]", "bob@[IPv6:2001:db8::1]", "jörg@bücher.example", "", "@", "a@b@c",
		"a..b@c", `"@"@x`, `"\\"@x`, "a@-b", strings.Repeat("x", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if a != (Address{}) {
				t.Errorf("Parse(%q) failed with %v but returned %+v", s, err, a)
			}
			return
		}
		if a.IsNull() || a.Local == "" || a.Domain == "" {
			t.Fatalf("Parse(%q) = %+v, an incomplete address without an error", s, a)
		}
		if len(a.Local) > MaxLocalLen || len(a.Domain) > MaxDomainLen {
			t.Errorf("Parse(%q) = %+v: over the limits", s, a)
		}
		if !utf8.ValidString(a.Local) || !utf8.ValidString(a.Domain) {
			t.Errorf("Parse(%q) = %+v: invalid UTF-8", s, a)
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Errorf("Parse(%q) = %+v; String() = %q parses to %+v, %v", s, a, a.String(), b, err)
		}
		if k := a.Key(); strings.ToLower(k) != k {
			t.Errorf("Key() = %q is not lower case", k)
		}
	})
}
