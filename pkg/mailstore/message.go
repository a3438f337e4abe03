package mailstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/safefile"
)

// ErrGone is returned for a message whose file no longer exists (expunged
// by another process).
var ErrGone = errors.New("message no longer exists")

// path returns the current file of base, rescanning once if it moved.
func (f *Folder) path(base string, rescan bool) (string, error) {
	if !rescan {
		if rel, ok := f.relOf(base); ok {
			return filepath.Join(f.Dir, rel), nil
		}
	}
	if _, err := f.scan(); err != nil {
		return "", err
	}
	rel, ok := f.names[base]
	if !ok {
		return "", ErrGone
	}
	return filepath.Join(f.Dir, rel), nil
}

// retry runs op on the file of base, and once more after a rescan if the
// file was renamed meanwhile (another session changed its flags).
func (f *Folder) retry(base string, op func(path string) error) error {
	for i := range 2 {
		p, err := f.path(base, i > 0)
		if err != nil {
			return err
		}
		err = op(p)
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return ErrGone
}

// Read returns the message's contents with CRLF line endings, as IMAP
// sends them, and its modification time (the IMAP INTERNALDATE).
func (f *Folder) Read(base string) ([]byte, time.Time, error) {
	var data []byte
	var mtime time.Time
	err := f.retry(base, func(p string) error {
		fh, t, err := openWithTime(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		mtime = t
		data, err = io.ReadAll(fh)
		return err
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return ToCRLF(data), mtime, nil
}

// Size returns the size of the message with CRLF line endings: the ",W="
// field of its name, or what reading it gives.
func (f *Folder) Size(base string) (int64, error) {
	if n, ok := nameSize(base); ok {
		return n, nil
	}
	data, _, err := f.Read(base)
	return int64(len(data)), err
}

// messageSize is the size maildirsize counts for the message base at p:
// its name's W=, or (a name another program gave) the file's size, which
// leaves out the CRs a CRLF count would add; when in doubt the file is
// rebuilt (maildirsize.go). Neither reads the message.
func messageSize(base, p string) int64 {
	if n, ok := nameSize(base); ok {
		return n
	}
	if fi, err := os.Stat(p); err == nil {
		return fi.Size()
	}
	return 0
}

// nameSize returns the ",W=" field of a base name.
func nameSize(base string) (int64, bool) {
	// Without strings.Split: a summary of the index calls this for every
	// message.
	for rest := base; ; {
		i := strings.Index(rest, ",W=")
		if i < 0 {
			return 0, false
		}
		rest = rest[i+3:]
		v := rest
		if j := strings.IndexByte(v, ','); j >= 0 {
			v = v[:j]
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return n, true
		}
	}
}

// ToCRLF turns bare LF into CRLF.
func ToCRLF(b []byte) []byte {
	n := bytes.Count(b, []byte{'\n'}) - bytes.Count(b, []byte("\r\n"))
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// SetFlags changes the flags of a message by renaming its file, and
// returns the flags now set. A message still in new/ moves to cur/.
func (f *Folder) SetFlags(base string, change func(Flags) Flags) (Flags, error) {
	var now Flags
	err := f.retry(base, func(p string) error {
		_, old := splitName(filepath.Base(p))
		now = change(old)
		if now == old && filepath.Base(filepath.Dir(p)) == "cur" {
			return nil
		}
		np := filepath.Join(f.Dir, "cur", base+":2,"+string(now))
		if err := os.Rename(p, np); err != nil {
			return err
		}
		f.ownNames()
		f.names[base] = "cur/" + filepath.Base(np)
		return nil
	})
	return now, err
}

// Expunge removes the messages' files and makes the removal durable. The
// UID list drops their lines now and then (Compact).
func (f *Folder) Expunge(bases []string) error {
	var freed, n int64
	defer func() { f.account(-freed, -n) }() // what was removed, even if not all
	for _, b := range bases {
		err := f.retry(b, func(p string) error {
			size := messageSize(b, p)
			if err := os.Remove(p); err != nil {
				return err
			}
			freed, n = freed+size, n+1 // by this call: not by another process's expunge
			return nil
		})
		if err != nil && !errors.Is(err, ErrGone) {
			return fmt.Errorf("expunge: %w", err)
		}
		f.ownNames()
		delete(f.names, b)
	}
	if err := safefile.SyncDir(filepath.Join(f.Dir, "cur")); err != nil {
		return err
	}
	return f.maybeCompact()
}

// account records messages added to or removed from the folder in the
// mailbox's Maildir++ quota file, if it has one (maildirsize.go): every
// writer appends its changes, so that the usage needs no scan. A failure
// is kept for CacheErr: the file is rebuilt when in doubt.
func (f *Folder) account(size, count int64) {
	if f.root == "" || count == 0 {
		return
	}
	if err := (&Store{Root: f.root}).AddQuota(size, count); err != nil {
		f.cacheErr = err
	}
}

// maybeCompact rewrites the UID list when most of its lines are dead.
func (f *Folder) maybeCompact() error {
	f.load()
	live := len(f.names)
	dead := len(f.ul.order) - live
	if dead < 64 || dead < live {
		return nil
	}
	return f.ul.compact(f.Dir, f.scanBases)
}

// Append stores a message (given with CRLF line endings, as IMAP sends it)
// durably, with flags and internal date, and returns its UID and the
// folder's UIDVALIDITY (RFC 4315 APPENDUID).
func (f *Folder) Append(msg []byte, flags Flags, date time.Time) (uid, validity uint32, err error) {
	return f.AppendFrom(bytes.NewReader(msg), flags, date)
}

// AppendFrom is Append reading the message from r, which it streams
// through maildir.Store: written in tmp/ with LF line endings (like every
// stored message), fsynced, linked into cur/ under a name with its sizes,
// and cur/ fsynced.
func (f *Folder) AppendFrom(r io.Reader, flags Flags, date time.Time) (uid, validity uint32, err error) {
	path, err := maildir.Store(f.Dir, maildir.Options{Cur: true, Flags: string(flags.With("", "")), MTime: date, ToLF: true}, nil, r)
	if err != nil {
		return 0, 0, fmt.Errorf("append: %w", err)
	}
	base, _, _ := strings.Cut(filepath.Base(path), ":2,")
	size, _ := nameSize(base) // maildir.Store writes W=
	f.account(size, 1)
	uids, err := f.register([]string{base})
	if err != nil {
		return 0, 0, err
	}
	return uids[0], f.ul.validity, nil
}

func writeSync(path string, data []byte, mtime time.Time) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(path, mtime, mtime)
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// register gives UIDs to new files of this folder, in order.
func (f *Folder) register(bases []string) ([]uint32, error) {
	if _, err := f.scan(); err != nil {
		return nil, err
	}
	if err := f.ul.assign(f.Dir, bases, f.scanBases); err != nil {
		return nil, err
	}
	uids := make([]uint32, len(bases))
	for i, b := range bases {
		uids[i] = f.ul.uidOf(b)
	}
	return uids, nil
}

// Validity returns the UIDVALIDITY last read.
func (f *Folder) Validity() uint32 { return f.ul.validity }

// CopyTo copies messages into dst with their flags, by hard link when the
// filesystem allows and by a durable copy otherwise, and returns their new
// UIDs in dst, in the same order (RFC 4315 COPYUID).
func (f *Folder) CopyTo(dst *Folder, msgs []Message) ([]uint32, error) {
	var bases []string
	var added int64
	defer func() { dst.account(added, int64(len(bases))) }() // what was linked, even if not all
	for _, m := range msgs {
		size := ""
		if i := strings.IndexByte(m.Base, ','); i >= 0 {
			size = m.Base[i:]
		}
		nb := maildir.UniqueName(time.Now()) + size
		flags, err := f.translateFlags(dst, m.Flags)
		if err != nil {
			return nil, err
		}
		target := filepath.Join(dst.Dir, "cur", nb+":2,"+string(flags))
		var n int64
		err = f.retry(m.Base, func(p string) error {
			n = messageSize(m.Base, p)
			if err := os.Link(p, target); err == nil || errors.Is(err, os.ErrNotExist) {
				return err
			}
			return copyFile(p, filepath.Join(dst.Dir, "tmp", nb), target)
		})
		if err != nil {
			return nil, fmt.Errorf("copy: %w", err)
		}
		bases, added = append(bases, nb), added+n
	}
	if err := safefile.SyncDir(filepath.Join(dst.Dir, "cur")); err != nil {
		return nil, err
	}
	return dst.register(bases)
}

// translateFlags maps the keyword letters of fl from f's table to dst's.
func (f *Folder) translateFlags(dst *Folder, fl Flags) (Flags, error) {
	names := f.FlagNames(fl)
	keep := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return -1
		}
		return r
	}, string(fl))
	var kws []string
	for _, n := range names {
		if !strings.HasPrefix(n, `\`) {
			kws = append(kws, n)
		}
	}
	if len(kws) == 0 {
		return Flags(keep), nil
	}
	letters, err := dst.keywordLetters(kws, true)
	if errors.Is(err, ErrTooManyKeywords) {
		return Flags(keep), nil // the message is copied without them
	}
	if err != nil {
		return "", err
	}
	return Flags(keep).With(string(letters), ""), nil
}

func copyFile(src, tmp, target string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := writeSync(tmp, data, fi.ModTime()); err != nil {
		return err
	}
	err = os.Link(tmp, target)
	_ = os.Remove(tmp)
	return err
}

// Counts is what STATUS reports of a folder (RFC 3501 section 6.3.10,
// RFC 9051 for DELETED and SIZE).
type Counts struct {
	Messages, Unseen, Recent, Deleted int
	Size                              int64 // with CRLF line endings
	Validity, Next                    uint32
}

// Counts syncs the folder (without claiming new/) and counts it; snap is
// the snapshot counted.
func (f *Folder) Counts() (c Counts, snap Snapshot, err error) {
	snap, _, err = f.Sync(false)
	if err != nil {
		return Counts{}, snap, err
	}
	c = Counts{Messages: len(snap.Msgs), Validity: snap.Validity, Next: snap.Next}
	for _, m := range snap.Msgs {
		if !m.Flags.Has('S') {
			c.Unseen++
		}
		if m.Flags.Has('T') {
			c.Deleted++
		}
		if m.InNew {
			c.Recent++
		}
		n, serr := f.Size(m.Base)
		if serr != nil && !errors.Is(serr, ErrGone) {
			return Counts{}, snap, serr
		}
		c.Size += n
	}
	return c, snap, nil
}

// PeekCounts is Counts from the folder index's summary, for a folder not
// listed yet whose index is current (peek.go); ok is false otherwise.
func (f *Folder) PeekCounts() (c Counts, ok bool) {
	sum, ok := f.Peek()
	if !ok {
		return Counts{}, false
	}
	f.ClosePeek()
	if sum.Size < 0 {
		return Counts{}, false // a name without W=: Counts reads the file
	}
	return Counts{Messages: sum.Messages, Unseen: sum.Unseen, Deleted: sum.Deleted, Size: sum.Size,
		Validity: sum.Validity, Next: sum.Next}, true
}

// maxHeader bounds what ReadHeader reads of a message.
const maxHeader = 256 * 1024

// ReadHeader returns the message's header (up to and with the blank line,
// at most maxHeader bytes) with CRLF line endings, and its modification
// time, without reading the body.
func (f *Folder) ReadHeader(base string) ([]byte, time.Time, error) {
	var hdr []byte
	var mtime time.Time
	err := f.retry(base, func(p string) error {
		fh, t, err := openWithTime(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		mtime = t
		br := bufio.NewReader(io.LimitReader(fh, maxHeader))
		hdr = hdr[:0]
		for {
			line, err := br.ReadBytes('\n')
			hdr = append(hdr, line...)
			if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
				return nil
			}
		}
	})
	return ToCRLF(hdr), mtime, err
}

// openWithTime opens a message file and returns its modification time (the
// IMAP INTERNALDATE) from the same descriptor.
func openWithTime(p string) (*os.File, time.Time, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	fi, err := fh.Stat()
	if err != nil {
		_ = fh.Close()
		return nil, time.Time{}, err
	}
	return fh, fi.ModTime(), nil
}
