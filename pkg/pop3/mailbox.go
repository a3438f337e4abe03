package pop3

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mailsrv/pkg/mailstore"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"mailsrv/pkg/safefile"
)

// Message is one message of a POP3 session's snapshot of INBOX.
type Message struct {
	Name      string // current file name in cur/
	UID       string // UIDL value: derived from the Maildir unique name
	Size      int64  // octets as sent: with CRLF line endings (",W=")
	Deleted   bool   // marked by DELE in this session
	Retrieved bool   // sent by RETR
	secs      int64  // delivery time from the unique name, for sorting:
	usec      int64  // seconds and the microseconds of "SECS.Musec..."
}

// Mailbox is the snapshot of one Maildir's INBOX taken at login (RFC 1939
// section 5: message numbers and sizes stay fixed for the session). Only
// the session that holds the mailbox's lock uses it.
type Mailbox struct {
	Dir  string     // the Maildir
	Msgs []*Message // in delivery order; message n is Msgs[n-1]
}

// OpenMailbox takes the snapshot: it moves what is in new/ to cur/ (as
// every Maildir reader does, keeping the unique name and adding ":2,"),
// then lists cur/. Sizes come from ",W=" in the file name when it is there
// (maildir.Deliver and Dovecot write it), otherwise from reading the file.
func OpenMailbox(dir string) (*Mailbox, error) {
	if err := moveNew(dir); err != nil {
		return nil, err
	}
	names, err := readNames(filepath.Join(dir, "cur"))
	if err != nil {
		return nil, err
	}
	mb := &Mailbox{Dir: dir, Msgs: make([]*Message, 0, len(names))}
	all := make([]Message, len(names))
	for i, name := range names {
		size, err := crlfSize(filepath.Join(dir, "cur"), name)
		if errors.Is(err, os.ErrNotExist) {
			continue // expunged by another process since readdir
		}
		if err != nil {
			return nil, err
		}
		m := &all[i]
		*m = Message{Name: name, UID: UIDL(name), Size: size}
		m.secs, m.usec = nameTime(m.UID)
		mb.Msgs = append(mb.Msgs, m)
	}
	// Delivery order: unique names begin with the delivery time in
	// seconds, and the rest breaks ties the same way every session.
	slices.SortFunc(mb.Msgs, compareMessages)
	// Two files with one unique name (a copy made by hand, or the same
	// name with two sets of flags) would share a UIDL, which must be
	// unique (RFC 1939 section 7): the later ones get a hash of the name
	// and their rank among the copies, which stays the same while the
	// copies do.
	prev, rank := "", 0
	for _, m := range mb.Msgs {
		orig := m.UID
		if orig != prev {
			prev, rank = orig, 0
			continue
		}
		rank++
		sum := sha256.Sum256([]byte(orig + "#" + strconv.Itoa(rank)))
		m.UID = "h-" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return mb, nil
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	names, err := d.Readdirnames(-1)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == "" || n[0] == '.' }), nil
}

// moveNew renames every file of new/ into cur/ with an empty info part. A
// file that another reader moved first is skipped. The renames need no
// fsync: after a crash a message is in new/ or in cur/ under the same
// unique name, and either way the next session finds it with the same UIDL.
func moveNew(dir string) error {
	names, err := readNames(filepath.Join(dir, "new"))
	if err != nil {
		return err
	}
	for _, name := range names {
		to := name
		if !strings.Contains(name, ":") {
			to += ":2,"
		}
		err := os.Rename(filepath.Join(dir, "new", name), filepath.Join(dir, "cur", to))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	return nil
}

// uniquePart returns the Maildir unique name of a file name: the part
// before the info (":2,...") and before the first "," (",S=", ",W=" and
// other size fields).
func uniquePart(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	if i := strings.IndexByte(name, ','); i > 0 {
		name = name[:i]
	}
	return name
}

// UIDL returns the unique-id listing value of a Maildir file name (RFC 1939
// section 7: 1 to 70 characters from 0x21 to 0x7E, the same for a message
// in every session). It is the Maildir unique name, which renames for flags
// never change; a name that does not fit is replaced by a hash of itself,
// prefixed with "h-" so it cannot equal a real name of that form.
func UIDL(name string) string {
	u := uniquePart(name)
	ok := len(u) > 0 && len(u) <= 70 && !strings.HasPrefix(u, "h-")
	for i := 0; ok && i < len(u); i++ {
		ok = u[i] >= 0x21 && u[i] <= 0x7e
	}
	if ok {
		return u
	}
	sum := sha256.Sum256([]byte(u))
	return "h-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// compareMessages orders messages by delivery time, the seconds and
// microseconds that begin their unique name, then by name: the order in
// which imapd numbers them too.
func compareMessages(a, b *Message) int {
	return cmp.Or(cmp.Compare(a.secs, b.secs), cmp.Compare(a.usec, b.usec), strings.Compare(a.UID, b.UID))
}

// nameTime reads "SECS.Musec..." at the start of a unique name; parts
// that are not there are 0.
func nameTime(n string) (secs, usec int64) {
	sec, rest, _ := strings.Cut(n, ".")
	secs, _ = strconv.ParseInt(sec, 10, 64)
	if rest, ok := strings.CutPrefix(rest, "M"); ok {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end > 0 {
			usec, _ = strconv.ParseInt(rest[:end], 10, 64)
		}
	}
	return secs, usec
}

// crlfSize returns the size of a message once its line endings are CRLF:
// the ",W=" field of its name, or else the file's size plus its bare LFs.
func crlfSize(dir, name string) (int64, error) {
	base, _, _ := strings.Cut(name, ":")
	if i := strings.Index(base, ",W="); i >= 0 {
		v := base[i+3:]
		if j := strings.IndexByte(v, ','); j >= 0 {
			v = v[:j]
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	n, err := countCRLF(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func countCRLF(r io.Reader) (int64, error) {
	buf := make([]byte, 32*1024)
	var n int64
	lastCR := false
	for {
		k, err := r.Read(buf)
		p := buf[:k]
		n += int64(k)
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				lastCR = p[len(p)-1] == '\r'
				break
			}
			if !(i > 0 && p[i-1] == '\r' || i == 0 && lastCR) {
				n++
			}
			lastCR = false
			p = p[i+1:]
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Open opens message m for reading. Another process (imapd changing a
// flag) may have renamed the file since the snapshot: then it is found
// again in cur/ by its unique name. os.ErrNotExist means it was expunged.
func (mb *Mailbox) Open(m *Message) (*os.File, error) {
	if m.Name == "" {
		return nil, os.ErrNotExist
	}
	f, err := os.Open(filepath.Join(mb.Dir, "cur", m.Name))
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	if err := mb.relocate([]*Message{m}); err != nil {
		return nil, err
	}
	if m.Name == "" {
		return nil, os.ErrNotExist
	}
	return os.Open(filepath.Join(mb.Dir, "cur", m.Name))
}

// relocate updates the names of msgs from a fresh listing of cur/; a
// message no longer there gets an empty name.
func (mb *Mailbox) relocate(msgs []*Message) error {
	names, err := readNames(filepath.Join(mb.Dir, "cur"))
	if err != nil {
		return err
	}
	byUnique := make(map[string]string, len(names))
	for _, n := range names {
		byUnique[uniquePart(n)] = n
	}
	for _, m := range msgs {
		m.Name = byUnique[uniquePart(m.Name)]
	}
	return nil
}

// Commit is the UPDATE state (RFC 1939 section 6): it removes the messages
// marked deleted and marks those retrieved as seen (the Maildir "S" flag,
// which IMAP shows as \Seen), then fsyncs cur/ so that the change is
// durable before the client hears +OK. It returns how many messages it
// deleted, and an error if any change could not be made.
func (mb *Mailbox) Commit() (int, error) {
	var missed []*Message
	deleted, changed := 0, false
	var freed int64
	var errs []error
	apply := func(m *Message) error {
		if m.Name == "" {
			return nil // expunged meanwhile: nothing left to do
		}
		did, err := mb.apply(m)
		changed = changed || did
		if err == nil && m.Deleted {
			deleted++
			freed += m.Size
		}
		return err
	}
	defer func() {
		// Maildir++ quota: every writer appends its changes (see
		// pkg/mailstore, maildirsize.go); a failure only leaves the file
		// to be rebuilt, which the rules there do when in doubt.
		if deleted > 0 {
			_ = (&mailstore.Store{Root: mb.Dir}).AddQuota(-freed, -int64(deleted))
		}
	}()
	for _, m := range mb.Msgs {
		err := apply(m)
		if errors.Is(err, os.ErrNotExist) {
			missed = append(missed, m)
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	if len(missed) > 0 {
		if err := mb.relocate(missed); err != nil {
			errs = append(errs, err)
		} else {
			for _, m := range missed {
				if err := apply(m); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	if changed {
		if err := safefile.SyncDir(filepath.Join(mb.Dir, "cur")); err != nil {
			errs = append(errs, err)
		}
	}
	return deleted, errors.Join(errs...)
}

// apply makes the change one message needs: unlink it, or rename it to
// carry the S flag. It reports whether it tried to change anything.
func (mb *Mailbox) apply(m *Message) (bool, error) {
	switch {
	case m.Deleted:
		return true, os.Remove(filepath.Join(mb.Dir, "cur", m.Name))
	case m.Retrieved:
		to := withFlag(m.Name, 'S')
		if to == m.Name {
			return false, nil
		}
		cur := filepath.Join(mb.Dir, "cur")
		return true, os.Rename(filepath.Join(cur, m.Name), filepath.Join(cur, to))
	}
	return false, nil
}

// withFlag adds a flag letter to a Maildir file name's info part, keeping
// the letters in ASCII order as the Maildir specification asks.
func withFlag(name string, flag byte) string {
	base, info, ok := strings.Cut(name, ":")
	if !ok {
		return name + ":2," + string(flag)
	}
	flags, ok := strings.CutPrefix(info, "2,")
	if !ok || strings.IndexByte(flags, flag) >= 0 {
		return name // experimental info, or already set
	}
	b := []byte(flags + string(flag))
	slices.Sort(b)
	return base + ":2," + string(b)
}
