package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mailsrv/pkg/safefile"
)

// Special-use attributes (RFC 6154). The folders every mailbox is made
// with (maildir.SpecialFolders) have theirs by name; a folder created with
// CREATE-SPECIAL-USE (RFC 6154 section 3) keeps its attributes in a small
// file in its own directory, one per line, so that they follow the folder
// through RENAME and go with it on DELETE.

// SpecialUseName is the file in a folder's directory that lists the
// special-use attributes given when it was created.
const SpecialUseName = "mailsrv-specialuse"

// ErrUseAttr is a special-use attribute that cannot be given to a folder
// (RFC 6154 section 3, USEATTR).
var ErrUseAttr = errors.New("special-use attribute not supported")

// AssignableUses are the attributes CREATE may give: those of real
// folders. \All and \Flagged name virtual folders, which we do not have.
var AssignableUses = []string{`\Archive`, `\Drafts`, `\Junk`, `\Sent`, `\Trash`}

// CreateSpecial makes a folder with special-use attributes. An attribute
// we cannot give fails with ErrUseAttr before anything is made; if the
// attributes cannot be written, the folder is removed again, so that it
// exists with its attributes or not at all (RFC 6154 section 3).
func (s *Store) CreateSpecial(name string, uses []string) error {
	var canon []string
	for _, u := range uses {
		i := indexFold(AssignableUses, u)
		if i < 0 {
			return fmt.Errorf("%w: %s", ErrUseAttr, u)
		}
		if indexFold(canon, u) < 0 {
			canon = append(canon, AssignableUses[i])
		}
	}
	if err := s.Create(name); err != nil || len(canon) == 0 {
		return err
	}
	dir, err := s.dir(name)
	if err == nil {
		err = safefile.WriteFile(filepath.Join(dir, SpecialUseName), []byte(strings.Join(canon, "\n")+"\n"), 0600)
	}
	if err != nil {
		if derr := s.Delete(name); derr != nil {
			return fmt.Errorf("create %s: %w (and removing it: %v)", name, err, derr)
		}
		return fmt.Errorf("create %s: %w", name, err)
	}
	return nil
}

// SpecialUses returns the special-use attributes of a folder: those of
// its name (maildir.SpecialFolders) and those it was created with. A
// damaged or unreadable file counts as none.
func (s *Store) SpecialUses(name string) []string {
	var uses []string
	if u := SpecialUse(name); u != "" {
		uses = append(uses, u)
	}
	if IsInbox(name) {
		return uses
	}
	dir, err := s.dir(name)
	if err != nil {
		return uses
	}
	data, err := os.ReadFile(filepath.Join(dir, SpecialUseName))
	if err != nil || len(data) > 1024 {
		return uses
	}
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if i := indexFold(AssignableUses, l); i >= 0 && indexFold(uses, l) < 0 {
			uses = append(uses, AssignableUses[i])
		}
	}
	return uses
}

func indexFold(list []string, s string) int {
	for i, x := range list {
		if strings.EqualFold(x, s) {
			return i
		}
	}
	return -1
}
