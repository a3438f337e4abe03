package mailstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailsrv/pkg/safefile"
)

// The UID list of a folder, in the file UIDListName beside its cur/,
// new/ and tmp/ (see mailsrv-imapd(8), FILES):
//
//	mailsrv-uidlist 1 V<uidvalidity> N<next uid> G<random token of this rewrite>
//	<uid> <base name>
//	...
//
// The base name is the message's file name up to ':' (the flags change,
// the base never does). Lines are appended, one write each, under the
// folder's lock, in increasing UID order; readers need no lock and ignore a
// last line without its newline. The next UID is the larger of N and the
// last UID plus one. The file is rewritten (temporary file and rename, so
// readers see the old or the new) under the lock to drop the lines of
// expunged messages, with N set so that no UID is used twice. A file that
// does not parse is rebuilt from the Maildir with a new, larger
// UIDVALIDITY (RFC 3501 section 2.3.1.1): the Maildir is the truth, this
// file a cache of the numbers handed out. The last UIDVALIDITY given is
// also kept in validityName, so that a lost list gets a larger one.
const (
	UIDListName  = "mailsrv-uidlist"
	uidListLock  = "mailsrv-uidlist.lock"
	uidListMagic = "mailsrv-uidlist 1"
	validityName = "mailsrv-uidvalidity" // the last UIDVALIDITY given
)

// errDamaged marks a UID list that must be rebuilt.
var errDamaged = errors.New("uid list damaged")

// uidList is the parsed file, read incrementally.
type uidList struct {
	validity uint32
	next     uint32            // next UID to hand out
	uids     map[string]uint32 // base name → UID; nil until index() after an adopted folder index
	order    []entry           // in file order (increasing UID)
	// implicit, while order is empty, stands for it: the snapshot of an
	// adopted folder index whose every line names a file, each message
	// a line's UID and base (on 100,000 messages, 2.4 MB not held twice).
	// entries makes order of it at the first need.
	implicit []Message
	ino      uint64
	offset   int64  // bytes of whole lines read
	header   string // the first line, newline included
	gen      uint64 // changes whenever what was read changes
	damaged  bool   // the last read found damage
	shared   bool   // uids is shared with the listing cache: own() before a change
	dups     bool   // a base is listed twice (only its first UID counts)
}

type entry struct {
	uid  uint32
	base string
}

func (l *uidList) path(dir string) string { return filepath.Join(dir, UIDListName) }

// refresh brings l up to date with the file: it reads only what was
// appended when the file is the same one, all of it when it was replaced.
// A missing file leaves l empty (validity 0).
func (l *uidList) refresh(dir string) error {
	f, err := os.Open(l.path(dir))
	if errors.Is(err, os.ErrNotExist) {
		*l = uidList{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	if ino != l.ino || fi.Size() < l.offset || l.validity == 0 || l.damaged || !l.sameHeader(f) {
		// Another file (a rewrite; inode numbers may be reused): read
		// it all.
		*l = uidList{ino: ino, gen: l.gen + 1}
	}
	if fi.Size() == l.offset {
		return nil
	}
	if _, err := f.Seek(l.offset, io.SeekStart); err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	start := l.offset
	err = l.parse(f)
	if l.offset != start {
		l.gen++
	}
	l.damaged = errors.Is(err, errDamaged) // read it all again next time
	return err
}

// sameHeader reports whether the file starts with the header read before.
// Every rewrite writes a new random G field, so a replaced file differs
// even when it has the inode number and size of the old one.
func (l *uidList) sameHeader(f *os.File) bool {
	buf := make([]byte, len(l.header))
	n, err := f.ReadAt(buf, 0)
	return err == nil && n == len(buf) && string(buf) == l.header
}

// parse reads whole lines from r. The text is read at once and converted
// to one string, which the base names slice: no allocation per line.
func (l *uidList) parse(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	end := strings.LastIndexByte(string(data), '\n') + 1 // an incomplete last line is being written, or was lost
	text := string(data[:end])
	for len(text) > 0 {
		i := strings.IndexByte(text, '\n')
		line := text[:i]
		text = text[i+1:]
		l.offset += int64(i + 1)
		if l.validity == 0 {
			if err := l.parseHeader(line); err != nil {
				return err
			}
			if n := strings.Count(text, "\n"); n > 0 {
				l.uids = make(map[string]uint32, n)
				l.order = make([]entry, 0, n)
			}
			continue
		}
		if err := l.parseEntry(line); err != nil {
			return err
		}
	}
	return nil
}

func (l *uidList) parseHeader(line string) error {
	rest, ok := strings.CutPrefix(line, uidListMagic+" ")
	if !ok {
		return errDamaged
	}
	for _, f := range strings.Fields(rest) {
		if f[0] != 'V' && f[0] != 'N' {
			continue // G (the rewrite's token) and later additions
		}
		n, err := strconv.ParseUint(f[1:], 10, 32)
		if err != nil {
			return errDamaged
		}
		if f[0] == 'V' {
			l.validity = uint32(n)
		} else {
			l.next = uint32(n)
		}
	}
	if l.validity == 0 || l.next == 0 {
		return errDamaged
	}
	l.header = line + "\n"
	l.uids = map[string]uint32{}
	return nil
}

func (l *uidList) parseEntry(line string) error {
	l.index()
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return errDamaged
	}
	uid, ok := parseUID(line[:sp])
	base := line[sp+1:]
	if !ok || base == "" || strings.ContainsAny(base, "/: ") {
		return errDamaged
	}
	if n := len(l.order); n > 0 && uid <= l.order[n-1].uid {
		return errDamaged
	}
	if _, dup := l.uids[base]; !dup {
		l.own()
		l.uids[base] = uid
	} else {
		l.dups = true
	}
	l.order = append(l.order, entry{uid, base})
	l.next = max(l.next, uid+1)
	return nil
}

// uidOf returns the UID of base, 0 if it has none.
func (l *uidList) uidOf(base string) uint32 {
	l.index()
	return l.uids[base]
}

// index builds uids from order when an adopted folder index or a new list
// (build) left it out: each base's first UID counts. dups is known once
// it ran.
func (l *uidList) index() {
	l.entries()
	if l.uids != nil || l.validity == 0 {
		return
	}
	l.uids = make(map[string]uint32, len(l.order))
	for _, e := range l.order {
		if _, dup := l.uids[e.base]; dup {
			l.dups = true
			continue
		}
		l.uids[e.base] = e.uid
	}
	l.shared = false
}

// entries makes order of implicit, before order is read or appended to.
func (l *uidList) entries() {
	if len(l.implicit) == 0 {
		return
	}
	order := make([]entry, len(l.implicit), len(l.implicit)+len(l.order))
	for i, m := range l.implicit {
		order[i] = entry{m.UID, m.Base}
	}
	l.order = append(order, l.order...)
	l.implicit = nil
}

// parseUID parses a decimal UID, 1 to 2^32-1, digits only.
func parseUID(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n == 0 || n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// assign gives UIDs to the bases not yet listed, in the order given, and
// returns every base's UID. It takes the folder lock, and rebuilds a
// damaged or missing file.
func (l *uidList) assign(dir string, bases []string, live func() ([]string, error)) error {
	unlock, err := lock(filepath.Join(dir, uidListLock))
	if err != nil {
		return err
	}
	defer func() { _ = unlock() }()
	err = l.refresh(dir)
	if errors.Is(err, errDamaged) || err == nil && l.validity == 0 {
		all, lerr := live()
		if lerr != nil {
			return lerr
		}
		v, err := l.newValidity(dir)
		if err != nil {
			return err
		}
		if err := l.build(dir, v, all); err != nil {
			return err
		}
		if len(all) > 0 && len(bases) == len(all) && &bases[0] == &all[0] {
			return nil // live returned bases itself (listedBases): all numbered
		}
	} else if err != nil {
		return err
	}
	return l.appendNew(dir, bases)
}

// newValidity picks the UIDVALIDITY of a rebuilt list: the time, but
// above the old value when it could be read, and above the damaged file's
// last change (the old value was chosen before it), so that it differs.
// It remembers the value beside the list, so that a list lost later is
// rebuilt with a larger one even within the same second.
func (l *uidList) newValidity(dir string) (uint32, error) {
	v := max(uint32(time.Now().Unix()), l.validity+1)
	if fi, err := os.Stat(l.path(dir)); err == nil {
		v = max(v, uint32(fi.ModTime().Unix())+1)
	}
	if data, err := os.ReadFile(filepath.Join(dir, validityName)); err == nil {
		if last, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32); err == nil {
			v = max(v, uint32(last)+1)
		}
	}
	if err := safefile.WriteFile(filepath.Join(dir, validityName), []byte(strconv.FormatUint(uint64(v), 10)+"\n"), 0600); err != nil {
		return 0, fmt.Errorf("uid list: %w", err)
	}
	return v, nil
}

// listHeader is the first line of a list written now: its UIDVALIDITY, next
// UID, and a token of its own (sameHeader).
func listHeader(validity, next uint32) string {
	var token [6]byte
	_, _ = rand.Read(token[:])
	return fmt.Sprintf("%s V%d N%d G%s\n", uidListMagic, validity, next, hex.EncodeToString(token[:]))
}

// create makes the list of a folder that has none, numbering n messages
// from 1 with the lines write writes after the header ("<uid> <base>"),
// under the lock (writeNew). l is then the list as written but without its
// entries, which the caller (firstListing) adopts from the folder index it
// writes next. made is false, and nothing written, when the list exists or
// is damaged: another process made it meanwhile, and the general path
// reads or rebuilds it.
func (l *uidList) create(dir string, n int, write func(io.Writer) error) (made bool, err error) {
	unlock, err := lock(filepath.Join(dir, uidListLock))
	if err != nil {
		return false, err
	}
	defer func() { _ = unlock() }()
	err = l.refresh(dir)
	if err != nil && !errors.Is(err, errDamaged) {
		return false, err
	}
	if err != nil || l.validity != 0 {
		return false, nil
	}
	v, err := l.newValidity(dir)
	if err != nil {
		return false, err
	}
	if err := l.writeNew(dir, v, uint32(n+1), write); err != nil {
		return false, err
	}
	return true, nil
}

func (l *uidList) appendNew(dir string, bases []string) error {
	l.index()
	var buf bytes.Buffer
	var num [12]byte
	for _, b := range bases {
		if _, ok := l.uids[b]; ok {
			continue
		}
		if l.next == 0 || l.next == ^uint32(0) {
			return fmt.Errorf("uid list %s: UIDs exhausted", dir)
		}
		buf.Write(strconv.AppendUint(num[:0], uint64(l.next), 10))
		buf.WriteByte(' ')
		buf.WriteString(b)
		buf.WriteByte('\n')
		l.own()
		l.uids[b] = l.next
		l.order = append(l.order, entry{l.next, b})
		l.next++
	}
	if buf.Len() == 0 {
		return nil
	}
	f, err := os.OpenFile(l.path(dir), os.O_WRONLY|os.O_APPEND, 0600)
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	_, err = f.Write(buf.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	l.offset += int64(buf.Len())
	return nil
}

// build replaces the file, under the lock the caller holds, with a new
// list of UIDVALIDITY validity numbering bases from 1 in the order given
// (each base once: bases are a listing, distinct or sorted), and makes l
// that list as read. It is what rewrite with no entries and an appendNew
// of bases would leave, in one durable write and without reading the file
// back: a first SELECT of a 100,000-message folder wrote it twice,
// fsynced it twice and parsed it again.
func (l *uidList) build(dir string, validity uint32, bases []string) error {
	size := 0
	for _, b := range bases {
		size += len(b) + 12
	}
	buf := make([]byte, 0, size)
	order := make([]entry, 0, len(bases))
	next := uint32(1)
	for i, b := range bases {
		if i > 0 && b == bases[i-1] {
			continue // sorted: a base listed twice is numbered once
		}
		if next == ^uint32(0) {
			return fmt.Errorf("uid list %s: UIDs exhausted", dir)
		}
		buf = strconv.AppendUint(buf, uint64(next), 10)
		buf = append(buf, ' ')
		buf = append(buf, b...)
		buf = append(buf, '\n')
		order = append(order, entry{next, b})
		next++
	}
	err := l.writeNew(dir, validity, next, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	// The map of UIDs is built when first needed (index): a first SELECT
	// whose listing is then kept as the folder index's compact form never
	// needs it (3.4 MB for 100,000 names at its peak of memory). A base
	// named twice, apart, is then listed twice, and its first UID counts,
	// as for any reader (parseEntry).
	l.order = order
	return nil
}

// writeNew replaces the file, under the lock the caller holds, with a new
// list of UIDVALIDITY validity: its header, then the lines write writes
// ("<uid> <base>", up to next-1), in one durable write. l is then that
// list as read, but for its entries, which the caller gives it (build) or
// adopts with the folder index (firstListing).
func (l *uidList) writeNew(dir string, validity, next uint32, write func(io.Writer) error) error {
	head := listHeader(validity, 1)
	err := safefile.WriteFrom(l.path(dir), 0600, func(w io.Writer) error {
		if _, err := io.WriteString(w, head); err != nil {
			return err
		}
		return write(w)
	})
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	fi, err := os.Stat(l.path(dir)) // ours: the lock is held
	if err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	*l = uidList{validity: validity, next: next, ino: fi.Sys().(*syscall.Stat_t).Ino,
		offset: fi.Size(), header: head, gen: l.gen + 1}
	return nil
}

// rewrite replaces the file with a header and the entries keep, under the
// lock the caller holds.
func (l *uidList) rewrite(dir string, validity, next uint32, keep []entry) error {
	var buf bytes.Buffer
	buf.WriteString(listHeader(validity, next))
	for _, e := range keep {
		fmt.Fprintf(&buf, "%d %s\n", e.uid, e.base)
	}
	if err := safefile.WriteFile(l.path(dir), buf.Bytes(), 0600); err != nil {
		return fmt.Errorf("uid list: %w", err)
	}
	*l = uidList{gen: l.gen + 1}
	return l.refresh(dir)
}

// compact drops the entries whose message is gone, keeping N so that
// their UIDs are never handed out again.
func (l *uidList) compact(dir string, scan func() ([]string, error)) error {
	unlock, err := lock(filepath.Join(dir, uidListLock))
	if err != nil {
		return err
	}
	defer func() { _ = unlock() }()
	if err := l.refresh(dir); err != nil || l.validity == 0 {
		return err
	}
	l.index()
	// The scan happens under the lock: a message listed meanwhile by
	// another process must keep its line.
	bases, err := scan()
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, b := range bases {
		live[b] = true
	}
	var keep []entry
	for _, e := range l.order {
		if live[e.base] && l.uidOf(e.base) == e.uid {
			keep = append(keep, e)
		}
	}
	return l.rewrite(dir, l.validity, l.next, keep)
}
