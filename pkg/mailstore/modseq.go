package mailstore

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailsrv/pkg/safefile"
)

// The mod-sequences of a folder (RFC 7162 CONDSTORE and QRESYNC), in the
// file ModSeqName beside the UID list (see mailsrv-imapd(8), FILES):
//
//	mailsrv-modseq 1 V<uidvalidity> H<highest> F<floor> G<random token>
//	<modseq> <uid> :<flags>
//	<modseq> <uid> x
//
// Flags live in the Maildir file names, where any process may change them
// (another imapd, pop3d marking \Seen, a mail reader working on the
// directory), so this file is a record of what was last seen: each line
// says that message <uid> had the Maildir flag letters <flags> (keywords
// included) from mod-sequence <modseq> on, or ("x") was expunged at
// <modseq>. A later line for a UID replaces an earlier one. A process
// that tracks mod-sequences (an imapd session that enabled CONDSTORE)
// compares the folder's snapshot with the record, and whichever process
// first sees a message new, changed or gone appends its line under the
// folder's lock, with a mod-sequence above every one given (one value for
// everything one command or one look at the folder changed; RFC 7162
// section 3.1 allows messages to share one). Processes that do not track
// (pop3d, deliver, imapd sessions without CONDSTORE) write nothing: their
// changes are found by the next process that compares.
//
// Lines are appended, one write(2) and fsync each, under the lock; readers
// take no lock, read only what was appended since they last looked, and
// ignore a last line without its newline (a writer killed mid-write; the
// next writer cuts it off). HIGHESTMODSEQ is the larger of H and the
// largest <modseq> in the file. When the file holds many more lines than
// messages, it is rewritten (temporary file and rename) with one line per
// message and at most maxGone expunge lines; the mod-sequence of the
// newest expunge line dropped becomes the floor F: a client asking what
// vanished since a mod-sequence below F is told every UID it names that is
// not in the folder now, which RFC 7162 section 3.2.5.2 allows (report
// too much, never too little).
//
// A missing or damaged file, or one made for another UIDVALIDITY, is
// rebuilt from the folder: every message gets one new mod-sequence, larger
// than any given before, and F is set to it. Larger than any given before
// is kept by the file modSeqLimitName, a number above every mod-sequence
// handed out (raised by modSeqReserve, once in a million changes, when a
// mod-sequence reaches it; written durably before that mod-sequence is
// used), and by the clock: a rebuilt file starts at no less than the time
// in microseconds, and mod-sequences grow by one per change, far slower
// than the clock (the values, about 1.8e15 in 2026, stay below 2^53,
// which clients that keep numbers as doubles need, for two centuries),
// so that even a record lost with its limit file comes
// back larger (unless rebuilt many times within a second, or on a host
// whose clock is behind: the limit file is what makes it sure). So a
// rebuild never makes HIGHESTMODSEQ go back, and the
// UIDVALIDITY, which would make every client fetch the folder again, stays
// as it is; clients see every message as changed once, which is true to
// RFC 7162 (a mod-sequence only grows).
const (
	ModSeqName      = "mailsrv-modseq"
	modSeqMagic     = "mailsrv-modseq 1"
	modSeqLimitName = "mailsrv-modseq-limit"
	modSeqReserve   = 1 << 20
)

// maxGone bounds the expunge lines a rewrite keeps (a variable for tests).
var maxGone = 10000

// ModSeqs is one process's copy of a folder's mod-sequence record. It is
// not safe for concurrent use.
type ModSeqs struct {
	dir      string
	validity uint32
	highest  uint64
	floor    uint64
	live     map[uint32]modEntry // UID → its last line
	gone     map[uint32]uint64   // expunged UID → mod-sequence, above floor
	lines    int                 // lines read since the header
	ino      uint64
	offset   int64
	header   string
	limit    uint64   // modSeqLimitName as last read, 0: not read
	gen      uint64   // changes when what was read changes
	snapGen  uint64   // Snapshot.Gen last compared
	cmpMsgs  *Message // and its Msgs (shared, read-only: the same slice, the same messages)
	cmpLen   int
	cmpGen   uint64 // gen when the snapshot was last compared
	shared   bool   // live and gone are shared with the process's cache: own() first
}

type modEntry struct {
	mod   uint64
	flags Flags
}

// errModDamaged marks a record that must be rebuilt.
var errModDamaged = errors.New("modseq record damaged")

// NewModSeqs returns the record of the folder in dir: as this process
// last read it for another session (modseq_cache.go), or not read yet.
func NewModSeqs(dir string) *ModSeqs {
	if m := adoptModSeqs(dir); m != nil {
		return m
	}
	return &ModSeqs{dir: dir}
}

func (m *ModSeqs) path() string { return filepath.Join(m.dir, ModSeqName) }

// Highest returns HIGHESTMODSEQ as last synced.
func (m *ModSeqs) Highest() uint64 { return m.highest }

// Of returns the mod-sequence of a message, 0 if it is not recorded.
func (m *ModSeqs) Of(uid uint32) uint64 { return m.live[uid].mod }

// Gen changes whenever a mod-sequence may have changed.
func (m *ModSeqs) Gen() uint64 { return m.gen }

// Floor returns the mod-sequence at or below which expunges are forgotten.
func (m *ModSeqs) Floor() uint64 { return m.floor }

// Sync brings the record up to date with snap, the snapshot f.Sync just
// returned: messages it has that the record does not, or with other flags,
// and messages the record has that it has not, get a new mod-sequence
// under the folder lock. Nothing is locked or written when nothing
// differs.
func (m *ModSeqs) Sync(f *Folder, snap Snapshot) error {
	err := m.refresh()
	if err == nil && m.validity == snap.Validity && m.cmpGen == m.gen && m.compared(snap) {
		return nil // neither changed since the last comparison
	}
	if err == nil && m.validity == snap.Validity && !m.differs(f, snap) {
		m.setCompared(snap)
		m.keep()
		return nil
	}
	if err != nil && !errors.Is(err, errModDamaged) {
		return err
	}
	err = m.locked(func() error {
		err := m.refresh()
		switch {
		case err != nil && !errors.Is(err, errModDamaged):
			return err
		case err == nil && m.validity > snap.Validity:
			return nil // made for a newer UID list than snap's: not ours to undo
		case err != nil || m.validity != snap.Validity:
			return m.rebuild(snap)
		}
		return m.record(f, snap)
	})
	if err == nil {
		m.setCompared(snap)
		m.keep()
	}
	return err
}

// compared reports whether snap is the one last compared: the same
// generation of the same Folder, or the very same messages (a listing
// another session of this process kept, see cache.go).
func (m *ModSeqs) compared(snap Snapshot) bool {
	if m.snapGen == snap.Gen && m.snapGen != 0 {
		return true
	}
	return len(snap.Msgs) > 0 && m.cmpLen == len(snap.Msgs) && m.cmpMsgs == &snap.Msgs[0]
}

func (m *ModSeqs) setCompared(snap Snapshot) {
	m.snapGen, m.cmpGen, m.cmpLen, m.cmpMsgs = snap.Gen, m.gen, len(snap.Msgs), nil
	if len(snap.Msgs) > 0 {
		m.cmpMsgs = &snap.Msgs[0]
	}
}

// seenBelow is the UID below which a message missing from the snapshot
// is gone: UIDs given after the snapshot's listing may belong to files it
// could not see (see Folder.sync).
func seenBelow(f *Folder, snap Snapshot) uint32 {
	if f.seenNext == 0 {
		return snap.Next
	}
	return f.seenNext
}

// differs reports whether snap and the record disagree.
func (m *ModSeqs) differs(f *Folder, snap Snapshot) bool {
	n := 0
	for _, msg := range snap.Msgs {
		e, ok := m.live[msg.UID]
		if !ok || !sameFlags(e.flags, msg.Flags) {
			return true
		}
		n++
	}
	if n == len(m.live) {
		return false
	}
	below := seenBelow(f, snap)
	in := make(map[uint32]bool, len(snap.Msgs))
	for _, msg := range snap.Msgs {
		in[msg.UID] = true
	}
	for uid := range m.live {
		if !in[uid] && uid < below {
			return true
		}
	}
	return false
}

// record appends, under the lock, a line for each message of snap that
// differs from the record, all with one new mod-sequence. A message the
// record has with other flags is looked at again first: the listing may
// be older than a line another process wrote, and must not undo it.
func (m *ModSeqs) record(f *Folder, snap Snapshot) error {
	mod := m.highest + 1
	var buf bytes.Buffer
	in := make(map[uint32]bool, len(snap.Msgs))
	for _, msg := range snap.Msgs {
		in[msg.UID] = true
		e, ok := m.live[msg.UID]
		if ok && sameFlags(e.flags, msg.Flags) {
			continue
		}
		flags := msg.Flags
		if ok {
			f.freshName(msg.Base)
			rel, still := f.names[msg.Base]
			if !still {
				continue // gone: the next look records it
			}
			if _, flags = splitName(rel[4:]); sameFlags(e.flags, flags) {
				continue
			}
		}
		writeLine(&buf, mod, msg.UID, flags, false)
	}
	below := seenBelow(f, snap)
	for uid := range m.live {
		if !in[uid] && uid < below {
			writeLine(&buf, mod, uid, "", true)
		}
	}
	return m.append(buf.Bytes(), mod)
}

func writeLine(buf *bytes.Buffer, mod uint64, uid uint32, flags Flags, gone bool) {
	buf.WriteString(strconv.FormatUint(mod, 10))
	buf.WriteByte(' ')
	buf.WriteString(strconv.FormatUint(uint64(uid), 10))
	if gone {
		buf.WriteString(" x\n")
		return
	}
	buf.WriteString(" :")
	buf.WriteString(cleanFlags(flags))
	buf.WriteByte('\n')
}

// sameFlags reports whether recorded flags are those of a file name.
func sameFlags(rec, name Flags) bool {
	return rec == name || rec == Flags(cleanFlags(name))
}

// cleanFlags keeps a flag string on one line: a file name may hold any
// byte but '/' and NUL.
func cleanFlags(f Flags) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return '?'
		}
		return r
	}, string(f))
}

// append writes lines (all with mod-sequence mod) at the end of the file,
// under the lock the caller holds, and reads them back into m. It raises
// the limit file first when mod reaches it.
func (m *ModSeqs) append(lines []byte, mod uint64) error {
	if len(lines) == 0 {
		return nil
	}
	if err := m.reserve(mod, modSeqReserve); err != nil {
		return err
	}
	f, err := os.OpenFile(m.path(), os.O_WRONLY, 0600)
	if err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	// A line without its newline was left by a writer that died: cut it
	// off, so that ours starts a line.
	err = f.Truncate(m.offset)
	if err == nil {
		_, err = f.WriteAt(lines, m.offset)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	if err := m.refresh(); err != nil {
		return err
	}
	return m.maybeCompact()
}

// reserve makes sure that the limit file is above mod, raising it to mod
// plus extra when it is not.
func (m *ModSeqs) reserve(mod, extra uint64) error {
	if mod < m.limit {
		return nil
	}
	m.limit = readLimit(m.dir)
	if mod < m.limit {
		return nil
	}
	next := mod + extra
	if err := safefile.WriteFile(filepath.Join(m.dir, modSeqLimitName), []byte(strconv.FormatUint(next, 10)+"\n"), 0600); err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	m.limit = next
	return nil
}

func readLimit(dir string) uint64 {
	data, err := os.ReadFile(filepath.Join(dir, modSeqLimitName))
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 63)
	if err != nil {
		return 0
	}
	return n
}

// rebuild replaces the record, under the lock, with one line per message
// of snap, all at a mod-sequence above any given before (see the comment
// at the top).
func (m *ModSeqs) rebuild(snap Snapshot) error {
	base := max(uint64(time.Now().UnixMicro()), readLimit(m.dir), m.highest+1)
	if fi, err := os.Stat(m.path()); err == nil {
		// A damaged file's last change: its values were given before.
		base = max(base, uint64(fi.ModTime().UnixMicro())+1)
	}
	// Only just above base: a rebuild need not leave the clock behind
	// (the next change raises the limit by modSeqReserve).
	if err := m.reserve(base, 1); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, msg := range snap.Msgs {
		writeLine(&buf, base, msg.UID, msg.Flags, false)
	}
	return m.rewrite(snap.Validity, base, base, buf.Bytes())
}

// rewrite replaces the file with a header and body, under the lock.
func (m *ModSeqs) rewrite(validity uint32, highest, floor uint64, body []byte) error {
	var token [6]byte
	_, _ = rand.Read(token[:])
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s V%d H%d F%d G%s\n", modSeqMagic, validity, highest, floor, hex.EncodeToString(token[:]))
	buf.Write(body)
	if err := safefile.WriteFile(m.path(), buf.Bytes(), 0600); err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	m.reset(0)
	return m.refresh()
}

// maybeCompact rewrites the file when it holds many more lines than
// messages, keeping one line per message and the newest maxGone expunges.
func (m *ModSeqs) maybeCompact() error {
	if m.lines < 2*(len(m.live)+len(m.gone))+1024 && len(m.gone) <= 2*maxGone {
		return nil
	}
	floor := m.floor
	if len(m.gone) > maxGone {
		mods := make([]uint64, 0, len(m.gone))
		for _, mod := range m.gone {
			mods = append(mods, mod)
		}
		floor = max(floor, kthLargest(mods, maxGone))
	}
	var buf bytes.Buffer
	for uid, e := range m.live {
		writeLine(&buf, e.mod, uid, e.flags, false)
	}
	for uid, mod := range m.gone {
		if mod > floor {
			writeLine(&buf, mod, uid, "", true)
		}
	}
	return m.rewrite(m.validity, m.highest, floor, buf.Bytes())
}

// kthLargest returns the (k+1)-th largest value of mods (len(mods) > k):
// keeping the values above it keeps at most k.
func kthLargest(mods []uint64, k int) uint64 {
	slices.Sort(mods)
	return mods[len(mods)-1-k]
}

// locked runs fn under the folder lock (the UID list's).
func (m *ModSeqs) locked(fn func() error) error {
	unlock, err := lock(filepath.Join(m.dir, uidListLock))
	if err != nil {
		return err
	}
	err = fn()
	if uerr := unlock(); err == nil && uerr != nil {
		err = fmt.Errorf("modseq: unlock: %w", uerr)
	}
	return err
}

func (m *ModSeqs) reset(ino uint64) {
	*m = ModSeqs{dir: m.dir, ino: ino, gen: m.gen + 1, limit: m.limit}
}

// refresh reads what was appended to the file since the last call, or
// all of it when it was replaced. A missing file leaves m empty
// (validity 0); a damaged one returns errModDamaged.
func (m *ModSeqs) refresh() error {
	f, err := os.Open(m.path())
	if errors.Is(err, os.ErrNotExist) {
		if m.validity != 0 || m.ino != 0 {
			m.reset(0)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	if ino != m.ino || fi.Size() < m.offset || m.validity == 0 || !m.sameHeader(f) {
		m.reset(ino)
	}
	if fi.Size() == m.offset {
		return nil
	}
	if _, err := f.Seek(m.offset, io.SeekStart); err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("modseq: %w", err)
	}
	start := m.offset
	err = m.parse(data)
	if m.offset != start {
		m.gen++
	}
	if err != nil {
		m.reset(0) // read it all again next time
	}
	return err
}

func (m *ModSeqs) sameHeader(f *os.File) bool {
	buf := make([]byte, len(m.header))
	n, err := f.ReadAt(buf, 0)
	return err == nil && n == len(buf) && string(buf) == m.header
}

// parse reads the whole lines of data.
func (m *ModSeqs) parse(data []byte) error {
	end := bytes.LastIndexByte(data, '\n') + 1
	text := string(data[:end])
	for len(text) > 0 {
		i := strings.IndexByte(text, '\n')
		line := text[:i]
		text = text[i+1:]
		m.offset += int64(i + 1)
		if m.validity == 0 {
			if err := m.parseHeader(line); err != nil {
				return err
			}
			if n := strings.Count(text, "\n"); n > 0 {
				m.live = make(map[uint32]modEntry, n)
			}
			continue
		}
		if err := m.parseLine(line); err != nil {
			return err
		}
	}
	return nil
}

func (m *ModSeqs) parseHeader(line string) error {
	rest, ok := strings.CutPrefix(line, modSeqMagic+" ")
	if !ok {
		return errModDamaged
	}
	for _, f := range strings.Fields(rest) {
		var err error
		switch f[0] {
		case 'V':
			var v uint64
			v, err = strconv.ParseUint(f[1:], 10, 32)
			m.validity = uint32(v)
		case 'H':
			m.highest, err = strconv.ParseUint(f[1:], 10, 63)
		case 'F':
			m.floor, err = strconv.ParseUint(f[1:], 10, 63)
		}
		if err != nil {
			return errModDamaged
		}
	}
	if m.validity == 0 || m.highest == 0 {
		return errModDamaged
	}
	m.header = line + "\n"
	m.live = map[uint32]modEntry{}
	m.gone = map[uint32]uint64{}
	return nil
}

func (m *ModSeqs) parseLine(line string) error {
	modStr, rest, ok1 := strings.Cut(line, " ")
	uidStr, state, ok2 := strings.Cut(rest, " ")
	mod, err := strconv.ParseUint(modStr, 10, 63)
	uid, ok3 := parseUID(uidStr)
	if !ok1 || !ok2 || !ok3 || err != nil || mod == 0 {
		return errModDamaged
	}
	switch {
	case state == "x":
		m.own()
		delete(m.live, uid)
		if mod > m.floor {
			m.gone[uid] = mod
		}
	case strings.HasPrefix(state, ":"):
		m.own()
		delete(m.gone, uid)
		m.live[uid] = modEntry{mod, Flags(state[1:])}
	default:
		return errModDamaged
	}
	m.highest = max(m.highest, mod)
	m.lines++
	return nil
}

// Stored is the outcome of SetFlags for one message.
type Stored struct {
	Flags    Flags  // the flags now
	Mod      uint64 // its mod-sequence now
	Modified bool   // refused: changed since the UNCHANGEDSINCE value
	Gone     bool   // expunged meanwhile
}

// SetFlags changes the flags of msgs as Folder.SetFlags does, under the
// folder lock, and gives one new mod-sequence to those it changed. With
// cond set, a message whose mod-sequence is above since, or whose file has
// flags other than the record says (another process changed them and no
// one recorded it yet), is left as it is and reported Modified (RFC 7162
// section 3.1.3, UNCHANGEDSINCE; since 0 always fails).
func (m *ModSeqs) SetFlags(f *Folder, msgs []Message, cond bool, since uint64, change func(Flags) Flags) ([]Stored, error) {
	out := make([]Stored, len(msgs))
	err := m.locked(func() error {
		if err := m.refresh(); err != nil && !errors.Is(err, errModDamaged) {
			return err
		} else if err != nil || m.validity != f.ul.validity {
			if f.snap == nil {
				return errors.New("modseq: no snapshot to rebuild from")
			}
			if err := m.rebuild(*f.snap); err != nil {
				return err
			}
		}
		mod := m.highest + 1
		var buf bytes.Buffer
		for i, msg := range msgs {
			rec := m.live[msg.UID]
			if cond {
				f.freshName(msg.Base) // the test needs the flags as they are
			}
			var old Flags
			now, err := f.SetFlags(msg.Base, func(fl Flags) Flags {
				old = fl
				out[i].Modified = cond && (rec.mod > since || !sameFlags(rec.flags, fl))
				if out[i].Modified {
					return fl
				}
				return change(fl)
			})
			if errors.Is(err, ErrGone) {
				out[i].Gone = true
				continue
			}
			if err != nil {
				return err
			}
			out[i].Flags = now
			if now != old || !sameFlags(rec.flags, now) {
				writeLine(&buf, mod, msg.UID, now, false)
			}
		}
		return m.append(buf.Bytes(), mod)
	})
	for i, msg := range msgs {
		out[i].Mod = m.live[msg.UID].mod
	}
	return out, err
}

// Vanished returns, in ascending order, the UIDs in ranges (inclusive,
// below next) that were expunged after mod-sequence since. Below the
// floor, where expunges are forgotten, it returns every UID of ranges that
// live does not report, which may include UIDs expunged earlier (RFC 7162
// section 3.2.5.2 allows that) or never used.
func (m *ModSeqs) Vanished(since uint64, ranges [][2]uint32, next uint32, live func(uint32) bool) []uint32 {
	var out []uint32
	ranges = MergeRanges(ranges) // a client may send 10,000 overlapping ones
	in := func(uid uint32) bool { return InRanges(ranges, uid) }
	if since < m.floor {
		for _, r := range ranges {
			for uid := r[0]; uid <= r[1] && uid < next; uid++ {
				if !live(uid) {
					out = append(out, uid)
				}
			}
		}
	} else {
		for uid, mod := range m.gone {
			if mod > since && in(uid) {
				out = append(out, uid)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// freshName makes sure f.names has the current file name of base (another
// process may have renamed it since the last scan).
func (f *Folder) freshName(base string) {
	f.load()
	if rel, ok := f.names[base]; ok {
		if _, err := os.Lstat(filepath.Join(f.Dir, rel)); err == nil {
			return
		}
	}
	_, _ = f.path(base, true)
}

// MergeRanges sorts inclusive UID ranges (lo <= hi) and merges those that
// overlap or touch, so that each UID is in at most one.
func MergeRanges(ranges [][2]uint32) [][2]uint32 {
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b [2]uint32) int { return cmp.Compare(a[0], b[0]) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r[0]) <= uint64(out[n-1][1])+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

// InRanges reports whether uid is in ranges, as MergeRanges returns them.
func InRanges(ranges [][2]uint32, uid uint32) bool {
	i, _ := slices.BinarySearchFunc(ranges, uid, func(r [2]uint32, u uint32) int { return cmp.Compare(r[1], u) })
	return i < len(ranges) && ranges[i][0] <= uid
}
