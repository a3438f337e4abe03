package mailstore

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// A SELECT answers with counts (EXISTS, UNSEEN, UIDVALIDITY, UIDNEXT), not
// with messages. When the folder index (index.go) is current, Peek gives
// those counts from its head (a few hundred bytes read, three stats), and
// keeps the file open: PeekedSnapshot later reads the messages that the
// counts described from that same file, whatever happened since, so that
// the session's first view is the one its client was told about; the
// changes since are then found by Sync like any others. A session under
// tcpserver (a process per session) thus selects a 100,000-message folder
// without reading 7 MB, and pays for the listing only if it uses it.

// Summary is what a SELECT or a STATUS reports of a snapshot.
type Summary struct {
	Messages    int
	FirstUnseen int // sequence number of the first message without \Seen, 0 if none
	Unseen      int
	Deleted     int
	Size        int64 // of the messages with CRLF line endings (",W=" of the names); -1 if a name lacks it
	Validity    uint32
	Next        uint32
}

// Summary summarizes s.
func (s Snapshot) Summary() Summary {
	sum := Summary{Messages: len(s.Msgs), Validity: s.Validity, Next: s.Next}
	for i, m := range s.Msgs {
		sum.add(i, m.Base, m.Flags)
	}
	return sum
}

// add counts the message of sequence number i+1.
func (sum *Summary) add(i int, base string, flags Flags) {
	if !flags.Has('S') {
		if sum.Unseen++; sum.FirstUnseen == 0 {
			sum.FirstUnseen = i + 1
		}
	}
	if flags.Has('T') {
		sum.Deleted++
	}
	if n, ok := nameSize(base); ok && sum.Size >= 0 {
		sum.Size += n
	} else {
		sum.Size = -1
	}
}

// ErrIndexChanged is PeekedSnapshot's error when the peeked index turns out
// damaged: the messages the summary described cannot be listed.
var ErrIndexChanged = errors.New("folder index damaged since it was read")

// peeked is an index whose head was read by Peek.
type peeked struct {
	xf   *indexFile
	subs [2]dirStamp
}

// Peek returns the summary of a folder not listed yet, when its index is
// current: new/ and cur/ have the index's stamps and the UID list is the
// one it read, to the byte. ok is false otherwise (then Sync as usual).
func (f *Folder) Peek() (sum Summary, ok bool) {
	if f.listed() || f.peek != nil {
		return Summary{}, false
	}
	xf, err := openIndex(filepath.Join(f.Dir, IndexName))
	if err != nil {
		return Summary{}, false
	}
	p := &peeked{xf: xf, subs: xf.head.stamps}
	if !p.current(f.Dir) {
		xf.close()
		return Summary{}, false
	}
	f.peek = p
	return xf.head.sum, true
}

// current reports whether the folder is still as the peeked index says.
func (p *peeked) current(dir string) bool {
	for i, sub := range []string{"new", "cur"} {
		st, err := statDir(filepath.Join(dir, sub))
		if err != nil || st != p.subs[i] {
			return false
		}
	}
	h := &p.xf.head.ul
	fh, err := os.Open(filepath.Join(dir, UIDListName))
	if err != nil {
		return false
	}
	defer fh.Close()
	var sys syscall.Stat_t
	if err := syscall.Fstat(int(fh.Fd()), &sys); err != nil || sys.Ino != h.ino || sys.Size != h.offset {
		return false
	}
	return h.sameHeader(fh)
}

// Unchanged reports, for a folder summarized by Peek and not listed since,
// whether it is still as summarized: then a poll has nothing to report.
func (f *Folder) Unchanged() bool {
	return f.peek != nil && f.peek.current(f.Dir)
}

// PeekedSnapshot returns the snapshot that Peek summarized, read from the
// index Peek opened, and makes it the folder's listing; the next Sync
// finds what changed since. ErrIndexChanged if the file cannot give it.
func (f *Folder) PeekedSnapshot() (Snapshot, error) {
	p := f.peek
	if p == nil {
		return Snapshot{}, ErrIndexChanged
	}
	f.peek = nil
	defer p.xf.close()
	if snap, ok := f.adoptListingAt(p.subs, p.xf.head.sum); ok {
		return snap, nil
	}
	x, err := p.xf.read()
	if err != nil {
		return Snapshot{}, ErrIndexChanged
	}
	f.adopt(x)
	snap := f.lazySnapshot()
	if !x.sum.numbers(snap) { // parseIndexBody checked; this is only a guard
		f.names, f.lazy = nil, nil
		return Snapshot{}, ErrIndexChanged
	}
	return f.keep(snap, false, true, false), nil
}

// numbers reports whether s has the count, UIDVALIDITY and UIDNEXT of sum:
// then its sequence numbers are those a client told of sum knows. (The
// other counts are hints; comparing them would cost a pass over s.)
func (sum Summary) numbers(s Snapshot) bool {
	return sum.Messages == len(s.Msgs) && sum.Validity == s.Validity && sum.Next == s.Next
}

// adoptPeek is PeekedSnapshot for a Sync that comes first (the caller
// did not ask for the peeked snapshot): the listing is adopted, and Sync
// goes on from it.
func (f *Folder) adoptPeek() {
	if _, err := f.PeekedSnapshot(); err != nil {
		f.names, f.lazy = nil, nil // list afresh
	}
}

// ClosePeek releases what Peek holds (the index file), when the session
// leaves the folder without reading it.
func (f *Folder) ClosePeek() {
	if f.peek != nil {
		f.peek.xf.close()
		f.peek = nil
	}
}
