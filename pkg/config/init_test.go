package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInit(t *testing.T) {
	tests := []struct {
		name   string
		before map[string]string // files written before Init
		host   string
		err    string
		me     string // etc/me wanted afterwards
	}{
		{name: "fresh", host: "MX.Example.org.", me: "mx.example.org\n"},
		{name: "again, same host", before: map[string]string{FileMe: "mx.example.org\n", FileDomains: "kept.example\n"},
			host: "mx.example.org", me: "mx.example.org\n"},
		{name: "same host, other spelling", before: map[string]string{FileMe: "# me\nMX.example.org\n"},
			host: "mx.example.org.", me: "# me\nMX.example.org\n"},
		{name: "another host", before: map[string]string{FileMe: "mx.example.org\n"},
			host: "other.example", err: "refusing", me: "mx.example.org\n"},
		{name: "empty etc/me is not overwritten", before: map[string]string{FileMe: ""},
			host: "mx.example.org", err: "refusing", me: ""},
		{name: "bad host", host: "bad host", err: `host name "bad host"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0755); err != nil {
				t.Fatal(err)
			}
			for rel, text := range tc.before {
				if err := os.WriteFile(filepath.Join(root, rel), []byte(text), 0644); err != nil {
					t.Fatal(err)
				}
			}
			checkErr(t, Init(root, tc.host), tc.err)
			if tc.me == "" && tc.before == nil {
				return
			}
			if got, _ := os.ReadFile(filepath.Join(root, FileMe)); string(got) != tc.me {
				t.Errorf("etc/me = %q, want %q", got, tc.me)
			}
			for rel, text := range tc.before {
				if got, _ := os.ReadFile(filepath.Join(root, rel)); string(got) != text {
					t.Errorf("Init changed %s to %q", rel, got)
				}
			}
			if tc.err != "" {
				return
			}
			for _, rel := range []string{FileDomains, FileUsers, FileAliases, "mail"} {
				if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
					t.Errorf("after Init: %v", err)
				}
			}
			fi, err := os.Stat(filepath.Join(root, FileUsers))
			if err != nil || fi.Mode().Perm() != 0640 {
				t.Errorf("etc/users: %v, %v; want mode 0640", fi.Mode(), err)
			}
			// What Init writes parses.
			c := Open(root)
			if _, err := c.Users(); err != nil {
				t.Error(err)
			}
			if _, err := c.Aliases(); err != nil {
				t.Error(err)
			}
			if d, err := c.Domains(); err != nil || (tc.before[FileDomains] == "" && len(d) != 0) {
				t.Errorf("Domains after Init = %v, %v", d, err)
			}
			if h, err := c.Hostname(); err != nil || h != strings.ToLower(strings.TrimSuffix(tc.host, ".")) {
				t.Errorf("Hostname = %q, %v", h, err)
			}
		})
	}
}
