package config

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"mailsrv/pkg/address"
)

const testHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"

func TestParseMe(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            string // part of the error, "" for none
	}{
		{"plain", "mx.example.org\n", "mx.example.org", ""},
		{"case and dot", "  MX.Example.ORG.  \n", "mx.example.org", ""},
		{"comments", "# this host\n\nmx.example.org\n# end\n", "mx.example.org", ""},
		{"no newline", "mx.example.org", "mx.example.org", ""},
		{"empty", "", "", ""},
		{"two names", "a.example\nb.example\n", "", "line 2: more than one host name"},
		{"bad name", "a..b\n", "", "line 1"},
		{"control char", "mx.exa\x01mple.org\n", "", "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMe([]byte(tc.in))
			checkErr(t, err, tc.err)
			if tc.err == "" && got != tc.want {
				t.Errorf("parseMe(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// checkErr checks that err is nil when want is empty, and contains want
// otherwise.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one with %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want one with %q", err, want)
	}
}

func TestParseDomains(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"several", "example.org\n# comment\n\nEXAMPLE.net.\n\texample.com \n", []string{"example.com", "example.net", "example.org"}, ""},
		{"duplicate is harmless", "a.example\nA.example\n", []string{"a.example"}, ""},
		{"crlf", "a.example\r\nb.example\r\n", []string{"a.example", "b.example"}, ""},
		{"empty", "", nil, ""},
		{"bad label", "a.-b.example\n", nil, `line 1: domain "a.-b.example"`},
		{"space inside", "a example\n", nil, "line 1"},
		{"line too long", "x." + strings.Repeat("a", MaxLineLen) + "\n", nil, "token too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDomains([]byte(tc.in))
			checkErr(t, err, tc.err)
			if tc.err == "" && !slices.Equal(slices.Sorted(maps.Keys(got)), tc.want) {
				t.Errorf("parseDomains = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMaxLineLen pins the limit: a line, counted without its LF (a CR
// before it counts), must be shorter than MaxLineLen bytes, in every file.
func TestMaxLineLen(t *testing.T) {
	parsers := map[string]func([]byte) error{
		FileMe:      func(b []byte) error { _, err := parseMe(b); return err },
		FileDomains: func(b []byte) error { _, err := parseDomains(b); return err },
		FileUsers:   func(b []byte) error { _, err := parseUsers(b); return err },
		FileAliases: func(b []byte) error { _, err := parseAliases(b); return err },
	}
	for name, parse := range parsers {
		for _, tc := range []struct {
			n    int
			nl   string
			fail bool
		}{
			{MaxLineLen - 1, "\n", false},
			{MaxLineLen - 2, "\r\n", false}, // the CR counts
			{MaxLineLen - 1, "\r\n", true},
			{MaxLineLen - 1, "", false},
			{MaxLineLen, "\n", true},
			{MaxLineLen, "", true},
			{10 * MaxLineLen, "\n", true},
		} {
			line := "#" + strings.Repeat("x", tc.n-1)
			err := parse([]byte("# first\n" + line + tc.nl))
			if (err != nil) != tc.fail {
				t.Errorf("%s: a line of %d bytes + %q: error %v, want failure %v", name, tc.n, tc.nl, err, tc.fail)
			}
		}
	}
}

func TestParseUserLine(t *testing.T) {
	tests := []struct {
		name, in string
		key      string
		attrs    map[string]string
		err      string
	}{
		{"plain", "bob@example.org:" + testHash, "bob@example.org", nil, ""},
		{"case folded", "Bob@Example.ORG:" + testHash, "bob@example.org", nil, ""},
		{"attrs", "bob@example.org:" + testHash + ":quota=10M  uid=1001", "bob@example.org", map[string]string{"quota": "10M", "uid": "1001"}, ""},
		{"empty attrs", "bob@example.org:" + testHash + ":", "bob@example.org", nil, ""},
		{"no hash", "bob@example.org", "", nil, "want address:hash"},
		{"bad address", "bob@:" + testHash, "", nil, "address"},
		{"plus", "bob+x@example.org:" + testHash, "", nil, "only a-z"},
		{"slash", "a/b@example.org:" + testHash, "", nil, "only a-z"},
		{"dot first", ".bob@example.org:" + testHash, "", nil, "address syntax error"},
		{"dash first", "-bob@example.org:" + testHash, "", nil, "must start"},
		{"double dot", "a..b@example.org:" + testHash, "", nil, "address syntax error"},
		{"quoted", `"a b"@example.org:` + testHash, "", nil, "only a-z"},
		{"upper case hash kept", "bob@example.org:{PLAIN}Secret", "bob@example.org", nil, ""},
		{"space in hash", "bob@example.org:$argon2id$ x", "", nil, "white space in hash"},
		{"attr without =", "bob@example.org:" + testHash + ":quota", "", nil, `attribute "quota"`},
		{"attr with empty key", "bob@example.org:" + testHash + ":=x", "", nil, "want key=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUserLine(tc.in)
			checkErr(t, err, tc.err)
			if tc.err != "" {
				return
			}
			_, hash, _ := strings.Cut(tc.in, ":")
			hash, _, _ = strings.Cut(hash, ":")
			if u.Addr.Key() != tc.key || u.Hash != hash || !maps.Equal(u.Attrs, tc.attrs) {
				t.Errorf("ParseUserLine(%q) = %+v", tc.in, u)
			}
			// Line gives a line that parses back to the same user.
			u2, err := ParseUserLine(u.Line())
			if err != nil || u2.Addr != u.Addr || u2.Hash != u.Hash || !maps.Equal(u2.Attrs, u.Attrs) {
				t.Errorf("Line() = %q parses back to %+v, %v", u.Line(), u2, err)
			}
		})
	}
}

func TestParseUsers(t *testing.T) {
	in := "# users\nbob@example.org:" + testHash + "\n\n  ann@example.org:" + testHash + ":quota=1G\n"
	m, err := parseUsers([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, []string{"ann@example.org", "bob@example.org"}) {
		t.Errorf("users = %v", got)
	}
	_, err = parseUsers([]byte(in + "BOB@example.org:" + testHash + "\n"))
	checkErr(t, err, "line 5: user bob@example.org listed twice")
}

func TestParseAliasLine(t *testing.T) {
	tests := []struct {
		name, in string
		key      string
		targets  []string
		err      string
	}{
		{"one", "postmaster@example.org: bob@example.org", "postmaster@example.org", []string{"bob@example.org"}, ""},
		{"commas and spaces", "a@example.org:b@x.example,c@y.example  d@z.example ,\te@w.example",
			"a@example.org", []string{"b@x.example", "c@y.example", "d@z.example", "e@w.example"}, ""},
		{"angle brackets", "a@example.org: <b@x.example>", "a@example.org", []string{"b@x.example"}, ""},
		{"source case", "Info@EXAMPLE.org: b@x.example", "info@example.org", []string{"b@x.example"}, ""},
		{"target domain case", "a@example.org: Bob@X.Example", "a@example.org", []string{"Bob@x.example"}, ""},
		{"catch-all", "@Example.org: bob@example.org", "@example.org", []string{"bob@example.org"}, ""},
		{"tagged source", "bob+lists@example.org: lists@example.org", "bob+lists@example.org", []string{"lists@example.org"}, ""},
		{"no colon", "a@example.org bob@example.org", "", nil, "want source: target"},
		{"no target", "a@example.org:  ", "", nil, "has no target"},
		{"bad source", "a@@example.org: b@x.example", "", nil, "alias"},
		{"bad catch-all", "@bad..domain: b@x.example", "", nil, "catch-all"},
		{"bad target", "a@example.org: b@", "", nil, `target "b@"`},
		{"target without domain", "a@example.org: bob", "", nil, "target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, targets, err := ParseAliasLine(tc.in)
			checkErr(t, err, tc.err)
			if tc.err == "" && (key != tc.key || !slices.Equal(targets, tc.targets)) {
				t.Errorf("ParseAliasLine(%q) = %q %q, want %q %q", tc.in, key, targets, tc.key, tc.targets)
			}
		})
	}
}

func TestParseAliasesMerges(t *testing.T) {
	m, err := parseAliases([]byte("a@example.org: b@x.example\n# c\na@example.org: c@x.example\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m["a@example.org"]; !slices.Equal(got, []string{"b@x.example", "c@x.example"}) {
		t.Errorf("merged targets = %q", got)
	}
	_, err = parseAliases([]byte("a@example.org: b@x.example\nbroken\n"))
	checkErr(t, err, "line 2")
}

func TestLineKey(t *testing.T) {
	tests := []struct{ rel, line, want string }{
		{FileDomains, " Example.ORG. ", "example.org"},
		{FileDomains, "# comment", ""},
		{FileDomains, "   ", ""},
		{FileUsers, "Bob@example.org:" + testHash, "bob@example.org"},
		{FileUsers, "broken", ""},
		{FileAliases, "  @example.org: x@y.example", "@example.org"},
		{FileAliases, "Info@example.org: x@y.example", "info@example.org"},
		{FileAliases, "info@example.org:", ""},
	}
	for _, tc := range tests {
		if got := LineKey(tc.rel, tc.line); got != tc.want {
			t.Errorf("LineKey(%s, %q) = %q, want %q", tc.rel, tc.line, got, tc.want)
		}
	}
}

func TestAliasKey(t *testing.T) {
	for in, want := range map[string]string{"@Ex.org": "@ex.org", "A@Ex.org": "a@ex.org", "a+t@ex.org": "a+t@ex.org"} {
		if got, err := AliasKey(in); err != nil || got != want {
			t.Errorf("AliasKey(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "@", "@a..b", "nodomain", "a@b@"} {
		if got, err := AliasKey(in); err == nil {
			t.Errorf("AliasKey(%q) = %q, want an error", in, got)
		}
	}
	var ae error = address.ErrSyntax
	if _, err := AliasKey("@a..b"); !errors.Is(err, ae) {
		t.Errorf("AliasKey(@a..b) = %v, want it to wrap %v", err, ae)
	}
}
