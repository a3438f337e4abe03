package config

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"mailsrv/pkg/address"
)

// FuzzParse feeds one input to every control-file parser. Whatever the
// input, none may panic or hang, and what a parser accepts must be
// normalized: a domain parses to itself, a user line written back with
// Line parses to the same user, and an alias written back as
// "source: target, ..." parses to the same alias.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"mx.example.org\n",
		"# comment\n\nexample.org\nEXAMPLE.net.\r\n",
		"bob@example.org:" + testHash + "\n",
		"Bob@Example.org:" + testHash + ":quota=10M uid=1001\n",
		"bob@example.org:{PLAIN}x:a=b:c\n",
		"postmaster@example.org: bob@example.org, <ann@x.example>\n@example.org: bob@example.org\n",
		"bob+tag@example.org: \"a\\\"b\"@x.example\tc@[192.0.2.1]\n",
		"a@b: c@d\na@b: e@f\n",
		"\x00\x01:\n",
		"x@y:" + strings.Repeat("z", 200) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if me, err := parseMe(data); err == nil && me != "" {
			if d, err := address.ParseDomain(me); err != nil || d != me {
				t.Errorf("parseMe gave %q, which parses to %q, %v", me, d, err)
			}
		}
		if ds, err := parseDomains(data); err == nil {
			for d := range ds {
				if d2, err := address.ParseDomain(d); err != nil || d2 != d {
					t.Errorf("parseDomains gave %q, which parses to %q, %v", d, d2, err)
				}
			}
		}
		if us, err := parseUsers(data); err == nil {
			checkUsers(t, us)
		}
		if as, err := parseAliases(data); err == nil {
			checkAliases(t, as)
		}
	})
}

func checkUsers(t *testing.T, us map[string]User) {
	var lines []string
	for k, u := range us {
		if u.Addr.Key() != k {
			t.Errorf("user %q under key %q", u.Addr.Key(), k)
		}
		u2, err := ParseUserLine(u.Line())
		if err != nil || u2.Addr != u.Addr || u2.Hash != u.Hash || !maps.Equal(u2.Attrs, u.Attrs) {
			t.Errorf("user line %q parses back to %+v, %v; want %+v", u.Line(), u2, err, u)
		}
		lines = append(lines, u.Line())
	}
	again, err := parseUsers([]byte(strings.Join(lines, "\n")))
	if err != nil || len(again) != len(us) {
		t.Errorf("users written back parse to %d users, %v; want %d", len(again), err, len(us))
	}
}

func checkAliases(t *testing.T, as map[string][]string) {
	for k, targets := range as {
		if len(targets) == 0 {
			t.Errorf("alias %q without targets", k)
		}
		for _, tg := range targets {
			a, err := address.Parse(tg)
			if err != nil || a.String() != tg {
				t.Errorf("alias %q: target %q parses to %q, %v", k, tg, a, err)
			}
		}
		line := k + ": " + strings.Join(targets, ", ")
		k2, t2, err := ParseAliasLine(line)
		if err != nil || k2 != k || !slices.Equal(t2, targets) {
			t.Errorf("alias written back as %q parses to %q %q, %v", line, k2, t2, err)
		}
	}
}
