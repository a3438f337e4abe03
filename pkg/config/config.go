// Package config owns the control files under the mailsrv root directory
// (etc/me, etc/domains, etc/users, etc/aliases) and the layout of the tree
// below it. Readers go through a Config, which re-reads a file whenever it
// changes on disk, so long-running daemons see an administrator's edit
// without a restart. Writers (mailctl) go through Edit, which validates the
// whole new file and replaces it atomically. See mailsrv-files(5).
package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultRoot is the root directory when neither --root nor MAILSRV_ROOT is
// given.
const DefaultRoot = "/var/mailsrv"

// EnvRoot is the environment variable naming the root directory.
const EnvRoot = "MAILSRV_ROOT"

// Names of the control files, relative to the root.
const (
	FileMe      = "etc/me"
	FileDomains = "etc/domains"
	FileUsers   = "etc/users"
	FileAliases = "etc/aliases"
)

// ErrNoSuchUser is returned when an address of a local domain has no user,
// alias or catch-all.
var ErrNoSuchUser = errors.New("no such user")

// Config reads the control files of one root. It is safe for concurrent use.
type Config struct {
	Root string
	// Lookup, when set, answers LookupUser instead of etc/users: a process
	// that may not read the password hashes (smtpd running as
	// mailsrv-smtpd) asks a helper that can (pkg/authhelper). The users it
	// returns have no Hash.
	Lookup func(key string) (User, bool, error)

	mu      sync.Mutex
	me      cached[string]
	domains cached[map[string]bool]
	users   cached[map[string]User]
	aliases cached[map[string][]string]
}

// Open returns a Config for root. Nothing is read until it is needed.
func Open(root string) *Config {
	return &Config{Root: root}
}

// Path returns the absolute path of a file below the root.
func (c *Config) Path(rel string) string { return filepath.Join(c.Root, rel) }

// MailDir returns the directory holding all mailboxes.
func (c *Config) MailDir() string { return c.Path("mail") }

// QueueDir returns the queue directory.
func (c *Config) QueueDir() string { return c.Path("queue") }

// stamp identifies one version of a file on disk.
type stamp struct {
	ino, size int64
	mtime     int64
	ok        bool
}

func stat(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return stamp{}, nil
	}
	if err != nil {
		return stamp{}, err
	}
	st := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ok: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st, nil
}

// cached holds the parsed form of one file and the stamp it was read at.
type cached[T any] struct {
	st     stamp
	val    T
	set    bool
	stable bool // the file was older than mtimeSlack when read
}

// mtimeSlack: a file changed less than this long before it was read may
// change again with the same size and mtime (coarse timestamps, a reused
// inode), so its cache is not trusted until it has been read once more
// after that.
const mtimeSlack = 2 * time.Second

// load returns the parsed file, reading it again if it changed. A missing
// file parses as empty input.
func load[T any](c *Config, cc *cached[T], rel string, parse func([]byte) (T, error)) (T, error) {
	path := c.Path(rel)
	st, err := stat(path)
	if err != nil {
		var zero T
		return zero, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc.set && cc.st == st && cc.stable {
		return cc.val, nil
	}
	readAt := time.Now()
	var data []byte
	if st.ok {
		if data, err = os.ReadFile(path); err != nil {
			var zero T
			return zero, err
		}
	}
	val, err := parse(data)
	if err != nil {
		var zero T
		return zero, &FileError{Path: path, Err: err}
	}
	cc.st, cc.val, cc.set = st, val, true
	cc.stable = readAt.Sub(time.Unix(0, st.mtime)) > mtimeSlack
	return val, nil
}

// FileError is a control file that could not be parsed.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Hostname returns the contents of etc/me, or the system's host name when it
// is missing.
func (c *Config) Hostname() (string, error) {
	me, err := load(c, &c.me, FileMe, parseMe)
	if err != nil || me != "" {
		return me, err
	}
	return os.Hostname()
}

// Domains returns the set of local domains.
func (c *Config) Domains() (map[string]bool, error) {
	return load(c, &c.domains, FileDomains, parseDomains)
}

// IsLocal reports whether domain is one of ours.
func (c *Config) IsLocal(domain string) (bool, error) {
	d, err := c.Domains()
	return d[domain], err
}

// Users returns the users table, keyed by lower-case address.
func (c *Config) Users() (map[string]User, error) {
	return load(c, &c.users, FileUsers, parseUsers)
}

// Aliases returns the alias table: source key ("user@domain" or "@domain")
// to targets.
func (c *Config) Aliases() (map[string][]string, error) {
	return load(c, &c.aliases, FileAliases, parseAliases)
}

// LookupUser returns the user with the given address key.
func (c *Config) LookupUser(key string) (User, bool, error) {
	if c.Lookup != nil {
		return c.Lookup(key)
	}
	u, err := c.Users()
	if err != nil {
		return User{}, false, err
	}
	user, ok := u[key]
	return user, ok, nil
}

// Mailbox returns the Maildir of a local user: mail/DOMAIN/LOCALPART, or
// for a user with a home attribute (a system account, as a checkpassword
// program reports it through HOME) HOME/Maildir, or HOME itself when it
// is a Maildir already (mailctl checkpassword gives the mailbox as HOME).
func (c *Config) Mailbox(u User) string {
	if home := u.Attrs["home"]; home != "" {
		if fi, err := os.Stat(filepath.Join(home, "cur")); err == nil && fi.IsDir() {
			return home
		}
		return filepath.Join(home, "Maildir")
	}
	return filepath.Join(c.MailDir(), u.Addr.Domain, u.Addr.Local)
}

// LoginName turns a login name into an address: user@domain as given, or a
// bare local part completed with the local domain when there is exactly
// one. Anything else is returned unchanged, to fail as an unknown user.
func (c *Config) LoginName(name string) string {
	if strings.Contains(name, "@") {
		return name
	}
	domains, err := c.Domains()
	if err != nil || len(domains) != 1 {
		return name
	}
	for d := range domains {
		name += "@" + d
	}
	return name
}
