// Package mailstore gives imapd its view of a Maildir++ mailbox
// (https://cr.yp.to/proto/maildir.html, Courier's Maildir++ folders):
// folder names, the UID list that numbers messages for IMAP (RFC 3501
// section 2.3.1.1) with its link-based lock, flags and keywords kept in
// file names (keyword letters named in Dovecot's dovecot-keywords file),
// durable append, copy and expunge, subscriptions and quota usage. The
// Maildir stays the truth: the UID list is a cache that any number of
// processes, on any number of hosts, share and rebuild when it is lost.
//
// Files: store.go (folders, subscriptions), folder.go (scanning and
// snapshots), cache.go (listings a process keeps for its next sessions),
// index.go (the same listing on disk, for the next processes), hcache.go
// (the header cache), message.go (reading and changing messages),
// uidlist.go and lock.go (the UID list and its lock), modseq.go and
// modseq_cache.go (mod-sequences for CONDSTORE and QRESYNC, a record beside
// the UID list, and the copy a process keeps for its next sessions),
// flags.go, keywords.go, names.go, quota.go.
//
// Folder names: IMAP clients see "/" as the hierarchy delimiter; folder
// "a/b" is the directory ".a.b" below the mailbox, as Courier and Dovecot
// lay it out. A name may therefore not contain ".", and its parts are
// 7-bit (modified UTF-7 from IMAP4rev1 clients is kept as it is).
package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/safefile"
)

// Delim is the hierarchy delimiter shown to clients.
const Delim = "/"

// MaxNameLen bounds a folder name (the directory name must fit in 255
// bytes with its leading dot).
const MaxNameLen = 200

// SubscriptionsName is the file listing subscribed folders, one per line.
const SubscriptionsName = "subscriptions"

// Errors a client can cause.
var (
	ErrBadName  = errors.New("bad folder name")
	ErrNoFolder = errors.New("no such folder")
	ErrExists   = errors.New("folder already exists")
	ErrInbox    = errors.New("operation not allowed on INBOX")
)

// Store is one user's Maildir++ mailbox.
type Store struct{ Root string }

// Open returns the store rooted at dir, creating the mailbox (and its
// special folders) if it does not exist yet.
func Open(dir string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "cur")); errors.Is(err, os.ErrNotExist) {
		if err := maildir.Create(dir); err != nil {
			return nil, fmt.Errorf("mailstore: %w", err)
		}
	}
	return &Store{Root: dir}, nil
}

// IsInbox reports whether name is INBOX, which is case-insensitive.
func IsInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// CheckName validates a folder name given by a client.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return ErrBadName
	}
	for _, part := range strings.Split(name, Delim) {
		if part == "" {
			return ErrBadName
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c >= 0x7f || c == '.' || c == '*' || c == '%' {
			return ErrBadName
		}
	}
	return nil
}

// dir maps a folder name to its directory.
func (s *Store) dir(name string) (string, error) {
	if IsInbox(name) {
		return s.Root, nil
	}
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.Root, "."+strings.ReplaceAll(name, Delim, ".")), nil
}

// Folder opens an existing folder.
func (s *Store) Folder(name string) (*Folder, error) {
	dir, err := s.dir(name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoFolder
		}
		return nil, err
	}
	if IsInbox(name) {
		name = "INBOX"
	}
	return &Folder{Name: name, Dir: dir, root: s.Root}, nil
}

// List returns the names of all folders, INBOX first, the others sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || len(n) < 2 || n[0] != '.' || n[1] == '.' {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Root, n, "cur")); err != nil {
			continue
		}
		names = append(names, strings.ReplaceAll(n[1:], ".", Delim))
	}
	slices.Sort(names)
	return append([]string{"INBOX"}, names...), nil
}

// SpecialUse returns the RFC 6154 attribute of a folder, or "".
func SpecialUse(name string) string {
	for _, f := range maildir.SpecialFolders {
		if f.Name == name {
			return f.Use
		}
	}
	return ""
}

// Create makes a folder (RFC 3501 section 6.3.3). Parents need no
// directory of their own in Maildir++.
func (s *Store) Create(name string) error {
	if IsInbox(name) {
		return ErrExists
	}
	dir, err := s.dir(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		return ErrExists
	}
	if err := maildir.Init(dir); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0600); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return safefile.SyncDir(s.Root)
}

// Delete removes a folder and its messages. The directory is renamed out
// of sight first, so that other sessions see it gone at once.
func (s *Store) Delete(name string) error {
	if IsInbox(name) {
		return ErrInbox
	}
	dir, err := s.dir(name)
	if err != nil {
		return err
	}
	aside := filepath.Join(s.Root, "..deleted."+unique())
	if err := os.Rename(dir, aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ErrNoFolder
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := safefile.SyncDir(s.Root); err != nil {
		return err
	}
	return os.RemoveAll(aside)
}

// Rename renames a folder and the folders below it (RFC 3501 section
// 6.3.5). Renaming INBOX moves its messages to the new folder and leaves
// it empty, as RFC 3501 asks.
func (s *Store) Rename(from, to string) error {
	if IsInbox(from) {
		return s.renameInbox(to)
	}
	if IsInbox(to) {
		return ErrExists
	}
	src, err := s.dir(from)
	if err != nil {
		return err
	}
	dst, err := s.dir(to)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return ErrExists
	}
	all, err := s.List()
	if err != nil {
		return err
	}
	_, serr := os.Stat(src)
	found := serr == nil
	for _, n := range all {
		if strings.HasPrefix(n, from+Delim) {
			found = true
			if _, err := os.Stat(dst + "." + strings.ReplaceAll(n[len(from)+1:], Delim, ".")); err == nil {
				return ErrExists
			}
		}
	}
	if !found {
		return ErrNoFolder
	}
	for _, n := range all {
		if strings.HasPrefix(n, from+Delim) {
			if err := os.Rename(filepath.Join(s.Root, "."+strings.ReplaceAll(n, Delim, ".")),
				dst+"."+strings.ReplaceAll(n[len(from)+1:], Delim, ".")); err != nil {
				return fmt.Errorf("rename %s: %w", n, err)
			}
		}
	}
	if serr == nil {
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("rename %s: %w", from, err)
		}
	}
	return safefile.SyncDir(s.Root)
}

// Subscriptions returns the subscribed folder names.
func (s *Store) Subscriptions() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(s.Root, SubscriptionsName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// Subscribe adds or removes name in the subscriptions file, under a lock
// and by an atomic rewrite.
func (s *Store) Subscribe(name string, on bool) error {
	if IsInbox(name) {
		name = "INBOX"
	} else if err := CheckName(name); err != nil {
		return err
	}
	unlock, err := lock(filepath.Join(s.Root, SubscriptionsName+".lock"))
	if err != nil {
		return err
	}
	defer func() { _ = unlock() }()
	subs, err := s.Subscriptions()
	if err != nil {
		return err
	}
	subs = slices.DeleteFunc(subs, func(n string) bool { return n == name })
	if on {
		subs = append(subs, name)
	}
	slices.Sort(subs)
	data := strings.Join(subs, "\n")
	if data != "" {
		data += "\n"
	}
	return safefile.WriteFile(filepath.Join(s.Root, SubscriptionsName), []byte(data), 0600)
}

// renameInbox moves every message of INBOX, with its keyword table, into a
// new folder (which numbers them afresh).
func (s *Store) renameInbox(to string) error {
	if err := s.Create(to); err != nil {
		return err
	}
	dst, err := s.dir(to)
	if err != nil {
		return err
	}
	kw := filepath.Join(s.Root, KeywordsName)
	if data, err := os.ReadFile(kw); err == nil {
		if err := safefile.WriteFile(filepath.Join(dst, KeywordsName), data, 0600); err != nil {
			return err
		}
	}
	for _, sub := range []string{"new", "cur"} {
		names, err := readNames(filepath.Join(s.Root, sub))
		if err != nil {
			return err
		}
		for _, n := range names {
			err := os.Rename(filepath.Join(s.Root, sub, n), filepath.Join(dst, sub, n))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rename INBOX: %w", err)
			}
		}
		if err := safefile.SyncDir(filepath.Join(dst, sub)); err != nil {
			return err
		}
		if err := safefile.SyncDir(filepath.Join(s.Root, sub)); err != nil {
			return err
		}
	}
	return nil
}
