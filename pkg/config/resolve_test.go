package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailsrv/pkg/address"
)

// writeRoot makes a root with the given control files (relative name to
// contents) and returns a Config for it.
func writeRoot(t *testing.T, files map[string]string) *Config {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0755); err != nil {
		t.Fatal(err)
	}
	for rel, text := range files {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(text), 0644); err != nil {
			t.Fatal(err)
		}
	}
	return Open(root)
}

// targets formats resolved targets as "addr" (remote) or "addr>user"
// (local, with the user it lands in).
func targets(ts []Target) []string {
	var out []string
	for _, tg := range ts {
		if tg.Local() {
			out = append(out, tg.Addr.String()+">"+tg.User.Addr.Key())
		} else {
			out = append(out, tg.Addr.String())
		}
	}
	return out
}

func TestResolve(t *testing.T) {
	c := writeRoot(t, map[string]string{
		FileDomains: "example.org\nother.example\n",
		FileUsers: "bob@example.org:" + testHash + "\nann@example.org:" + testHash + "\n" +
			"carl@other.example:" + testHash + "\n",
		FileAliases: strings.Join([]string{
			"info@example.org: bob@example.org, ann@example.org",
			"sales@example.org: info@example.org, bob@example.org, boss@remote.example",
			"ann@example.org: ann@example.org, ann-copy@remote.example",
			"bob+spam@example.org: trash@remote.example",
			"@example.org: bob@example.org",
			"self@other.example: self@other.example",
			"loop1@other.example: loop2@other.example",
			"loop2@other.example: loop1@other.example",
			"",
		}, "\n"),
	})
	tests := []struct {
		name, addr string
		want       []string
		err        error
	}{
		{"user", "bob@example.org", []string{"bob@example.org>bob@example.org"}, nil},
		{"user, any case", "BOB@Example.ORG", []string{"BOB@example.org>bob@example.org"}, nil},
		{"tagged user keeps its tag", "bob+news@example.org", []string{"bob+news@example.org>bob@example.org"}, nil},
		{"exact alias before the user", "bob+spam@example.org", []string{"trash@remote.example"}, nil},
		{"alias", "info@example.org", []string{"bob@example.org>bob@example.org", "ann@example.org>ann@example.org", "ann-copy@remote.example"}, nil},
		{"alias of the untagged base", "info+x@example.org", []string{"bob@example.org>bob@example.org", "ann@example.org>ann@example.org", "ann-copy@remote.example"}, nil},
		{"nested, each target once", "sales@example.org", []string{"bob@example.org>bob@example.org", "ann@example.org>ann@example.org", "ann-copy@remote.example", "boss@remote.example"}, nil},
		{"alias naming itself is the mailbox", "ann@example.org", []string{"ann@example.org>ann@example.org", "ann-copy@remote.example"}, nil},
		{"catch-all", "nobody@example.org", []string{"bob@example.org>bob@example.org"}, nil},
		{"catch-all, tagged", "nobody+x@example.org", []string{"bob@example.org>bob@example.org"}, nil},
		{"remote", "Someone@Remote.Example", []string{"Someone@remote.example"}, nil},
		{"user of another domain", "carl+x@other.example", []string{"carl+x@other.example>carl@other.example"}, nil},
		{"no such user", "zed@other.example", nil, ErrNoSuchUser},
		{"self alias and no user", "self@other.example", nil, ErrNoSuchUser},
		{"loop ends", "loop1@other.example", nil, ErrNoSuchUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := address.Parse(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := c.Resolve(a)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Resolve(%s) error %v, want %v", tc.addr, err, tc.err)
			}
			if got := targets(ts); !slices.Equal(got, tc.want) {
				t.Errorf("Resolve(%s) = %q, want %q", tc.addr, got, tc.want)
			}
			ok, err := c.Exists(a)
			if err != nil || ok != (tc.err == nil) {
				t.Errorf("Exists(%s) = %v, %v", tc.addr, ok, err)
			}
		})
	}
}

// chain returns aliases a0 -> a1 -> ... -> a(n-1) -> bob@example.org.
func chain(n int) string {
	var b strings.Builder
	for i := range n {
		next := fmt.Sprintf("a%d@example.org", i+1)
		if i == n-1 {
			next = "bob@example.org"
		}
		fmt.Fprintf(&b, "a%d@example.org: %s\n", i, next)
	}
	return b.String()
}

func TestResolveLimits(t *testing.T) {
	remote := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "big@example.org: r%d@remote.example\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name, aliases, addr string
		n                   int    // number of targets wanted
		err                 string // part of the error wanted
	}{
		{"depth at the limit", chain(MaxAliasDepth), "a0@example.org", 1, ""},
		{"depth over the limit", chain(MaxAliasDepth + 1), "a0@example.org", 0, ErrAliasLoop.Error()},
		{"expansion at the limit", remote(MaxExpansion), "big@example.org", MaxExpansion, ""},
		{"expansion over the limit", remote(MaxExpansion + 1), "big@example.org", 0, "more than 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := writeRoot(t, map[string]string{
				FileDomains: "example.org\n",
				FileUsers:   "bob@example.org:" + testHash + "\n",
				FileAliases: tc.aliases,
			})
			ts, err := c.Resolve(address.Address{Local: strings.Split(tc.addr, "@")[0], Domain: "example.org"})
			checkErr(t, err, tc.err)
			if len(ts) != tc.n {
				t.Errorf("%d targets, want %d", len(ts), tc.n)
			}
		})
	}
}

// TestReload checks that an open Config sees changes to its files, made by
// rename (as Edit does) or in place, and a file's removal.
func TestReload(t *testing.T) {
	c := writeRoot(t, map[string]string{FileDomains: "a.example\n", FileMe: "mx.a.example\n"})
	check := func(domain string, want bool) {
		t.Helper()
		ok, err := c.IsLocal(domain)
		if err != nil || ok != want {
			t.Fatalf("IsLocal(%s) = %v, %v; want %v", domain, ok, err, want)
		}
	}
	check("a.example", true)
	if err := c.Edit(FileDomains, 0644, func(l []string) ([]string, error) { return append(l, "b.example"), nil }); err != nil {
		t.Fatal(err)
	}
	check("b.example", true)
	// In place (same inode). The size differs: with the same size, the
	// change is seen only once the modification time moves, and the
	// kernel's clock for it is coarse (a few ms).
	if err := os.WriteFile(c.Path(FileDomains), []byte("c.example\nd.example\ne.example\n"), 0644); err != nil {
		t.Fatal(err)
	}
	check("a.example", false)
	check("c.example", true)
	if err := os.Remove(c.Path(FileDomains)); err != nil {
		t.Fatal(err)
	}
	check("c.example", false)
	if h, err := c.Hostname(); err != nil || h != "mx.a.example" {
		t.Errorf("Hostname = %q, %v", h, err)
	}
	// A broken file is an error naming it, not an empty table.
	if err := os.WriteFile(c.Path(FileDomains), []byte("bad domain\n"), 0644); err != nil {
		t.Fatal(err)
	}
	var fe *FileError
	if _, err := c.IsLocal("a.example"); !errors.As(err, &fe) || fe.Path != c.Path(FileDomains) {
		t.Errorf("IsLocal with a broken file: %v", err)
	}
}
