package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"

	"mailsrv/pkg/safefile"
)

// validators check a whole control file before it replaces the old one.
var validators = map[string]func([]byte) error{
	FileMe:      func(b []byte) error { _, err := parseMe(b); return err },
	FileDomains: func(b []byte) error { _, err := parseDomains(b); return err },
	FileUsers:   func(b []byte) error { _, err := parseUsers(b); return err },
	FileAliases: func(b []byte) error { _, err := parseAliases(b); return err },
}

// Edit changes one control file under an exclusive lock (etc/.lock), so
// that two administrators' edits do not undo each other. fn receives the
// file's lines (comments and blank lines included) and returns the new ones;
// the result is validated as a whole and written atomically, so a reader
// never sees half a file and a bad edit changes nothing.
func (c *Config) Edit(rel string, perm os.FileMode, fn func(lines []string) ([]string, error)) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	path := c.Path(rel)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(nil, MaxLineLen)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	lines, err = fn(lines)
	if err != nil {
		return err
	}
	data := []byte(strings.Join(lines, "\n"))
	if len(lines) > 0 {
		data = append(data, '\n')
	}
	if v := validators[rel]; v != nil {
		if err := v(data); err != nil {
			return &FileError{Path: path, Err: err}
		}
	}
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	return safefile.WriteFileOwned(path, data, perm, uid, gid)
}

func (c *Config) lock() (func(), error) {
	f, err := os.OpenFile(c.Path("etc/.lock"), os.O_RDWR|os.O_CREATE, 0600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil
}

// LineKey returns the key a control-file line defines (the part before the
// first ':' for users and aliases, the whole line for domains), or "" for
// blank lines and comments. Edits use it to find the line to change.
func LineKey(rel, line string) string {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return ""
	}
	switch rel {
	case FileUsers:
		if u, err := ParseUserLine(line); err == nil {
			return u.Addr.Key()
		}
	case FileAliases:
		if k, _, err := ParseAliasLine(line); err == nil {
			return k
		}
	default:
		return strings.ToLower(strings.TrimSuffix(line, "."))
	}
	return ""
}
