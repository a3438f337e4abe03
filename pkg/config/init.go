package config

import (
	"fmt"
	"os"

	"mailsrv/pkg/address"
	"mailsrv/pkg/safefile"
)

// Init creates the control-file side of a new root: etc/ with me, domains,
// users and aliases, and mail/. It never overwrites a file that exists, so it
// is safe to run again; it fails if etc/me names another host.
func Init(root, hostname string) error {
	host, err := address.ParseDomain(hostname)
	if err != nil {
		return fmt.Errorf("host name %q: %w", hostname, err)
	}
	c := Open(root)
	for _, d := range []string{root, c.Path("etc"), c.MailDir()} {
		if err := os.MkdirAll(d, 0755); err != nil {
			return err
		}
	}
	if me, err := os.ReadFile(c.Path(FileMe)); err == nil {
		if got, _ := parseMe(me); got != host {
			return fmt.Errorf("%s already says %q: refusing to change it to %q", c.Path(FileMe), got, host)
		}
	}
	files := []struct {
		rel, text string
		perm      os.FileMode
	}{
		{FileMe, host + "\n", 0644},
		{FileDomains, "# Local domains, one a line. See mailsrv-files(5).\n", 0644},
		{FileUsers, "# address:argon2id-hash[:key=value ...]. Edit with mailctl user.\n", 0640},
		{FileAliases, "# source: target, target ...  (source @domain is a catch-all)\n", 0644},
	}
	for _, f := range files {
		if _, err := os.Stat(c.Path(f.rel)); err == nil {
			continue
		}
		if err := safefile.WriteFile(c.Path(f.rel), []byte(f.text), f.perm); err != nil {
			return err
		}
	}
	return nil
}
