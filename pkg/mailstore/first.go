package mailstore

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// numberFirst numbers a folder listed by this sync that had no UID list:
// the first SELECT ever of a folder. It does what the general path of
// sync does (sort the bases, assign, snapshot, and the index's write in
// keep) without looking each of them up in f.names: the listing is
// sorted as "sub/NAME"s, which give the snapshot its flags and the index
// its files in UID order (f.ordered). On 100,000 messages the lookups,
// two per message in map of that size, were a sixth of the SELECT.
//
// ok is false when another process made the UID list meanwhile (assign
// then appended what it lacked, as it would have): the caller makes the
// snapshot the general way.
func (f *Folder) numberFirst(rels []string) (snap Snapshot, ok bool, err error) {
	if len(rels) != len(f.names) {
		rels = make([]string, 0, len(f.names))
		for _, rel := range f.names {
			rels = append(rels, rel)
		}
	}
	// Each name is read once, in the order listed (memory order), for
	// its sort key; the sort moves small keys (24 bytes, where moving the
	// whole record was a third of the sort's time). Bases and flags are
	// taken from the names again below rather than kept beside them: at
	// the moment of a first SELECT's peak of memory, 5 MB less.
	type key struct {
		secs, usec int64
		i          int
	}
	keys := make([]key, len(rels))
	for i, rel := range rels {
		s, u := nameTime(relBase(rel))
		keys[i] = key{s, u, i}
	}
	slices.SortFunc(keys, func(a, b key) int { // sortNames' order
		switch {
		case a.secs != b.secs:
			return cmpInt(a.secs, b.secs)
		case a.usec != b.usec:
			return cmpInt(a.usec, b.usec)
		}
		return strings.Compare(relBase(rels[a.i]), relBase(rels[b.i]))
	})
	bases := make([]string, len(keys))
	for i, k := range keys {
		bases[i] = relBase(rels[k.i])
	}
	listed := func() ([]string, error) { return bases, nil } // see listedBases
	if err := f.ul.assign(f.Dir, bases, listed); err != nil {
		return Snapshot{}, false, err
	}
	if len(f.ul.order) != len(bases) || f.ul.dups {
		return Snapshot{}, false, nil
	}
	for i, e := range f.ul.order {
		if e.uid != uint32(i+1) || e.base != bases[i] {
			return Snapshot{}, false, nil
		}
	}
	snap = Snapshot{Validity: f.ul.validity, Next: f.ul.next, Msgs: make([]Message, len(keys))}
	ordered := make([]string, len(keys))
	for i, k := range keys {
		rel := rels[k.i]
		base, flags := splitName(rel[strings.IndexByte(rel, '/')+1:])
		snap.Msgs[i] = Message{UID: uint32(i + 1), Base: base, Flags: flags, InNew: rel[:3] == "new"}
		ordered[i] = rel
	}
	f.ordered = ordered
	return snap, true, nil
}

// relBase is the base name of "sub/NAME".
func relBase(rel string) string {
	base, _ := splitName(rel[strings.IndexByte(rel, '/')+1:])
	return base
}

// firstListing is a Folder's first Sync when the folder has no UID list
// yet (its first SELECT ever), done in the least memory. The listing's
// names, held without pointers, are numbered in sorted order without maps
// and copied once, in that order, as the folder index's lines; the UID
// list, the summary and the index file are then made from those lines in
// turn, and the Folder adopts them as a new process adopts the index
// (compact). On 100,000 messages, the general path's maps, UID list
// entries, snapshot and index text held beside the listing took the heap
// to 45-56 MB; this path peaks at about the listing and the lines (15 MB),
// then the adopted index (12 MB, uidList.implicit). Reading the names in
// sorted order jumps about the listing (a cache miss a name): they are
// read so once.
//
// ok is false when the general path must do it: nothing listed, a
// message in new/, a name the UID list cannot hold, a directory that kept
// changing, or another process that made the UID list meanwhile (which the
// general path then reads).
func (f *Folder) firstListing() (snap Snapshot, ok bool, err error) {
	defer lean()() // lean.go
	fl, ok, err := f.listFirst()
	if err != nil || !ok || !fl.number() {
		return Snapshot{}, false, err
	}
	buf, n := fl.lines(), len(fl.keys)
	// The listing is garbage now: the lines hold the names. A large one
	// is collected before the lines are parsed (a collection of a heap
	// that holds no pointers: a millisecond), so that its megabytes (8 on
	// 100,000 messages) are not beside the parse's.
	if len(fl.chunks) > firstGCChunks { // fl is not used past here
		runtime.GC()
	}
	lines := buf[maxIndexHead:]
	made, err := f.ul.create(f.Dir, n, func(w io.Writer) error { return writeUIDLines(w, lines) })
	if err != nil || !made {
		return Snapshot{}, false, err
	}
	// From here f.ul is the new list without its entries, which the
	// index's parse gives: a failure must leave it to be read again.
	head := f.indexHead(linesSummary(lines, f.ul.validity, n))
	if len(head) > maxIndexHead {
		f.ul = uidList{}
		return Snapshot{}, false, nil // cannot happen: four short lines
	}
	body := buf[maxIndexHead-len(head):]
	copy(body, head)
	if f.stamps[0].settled(f.scanned) && f.stamps[1].settled(f.scanned) {
		if err := f.writeIndexBody(body, len(head)); err != nil {
			f.cacheErr = err // the folder works without it
		}
	}
	x, err := parseIndexBody(unsafe.String(unsafe.SliceData(body), len(body)))
	if err != nil {
		f.ul = uidList{}
		return Snapshot{}, false, fmt.Errorf("folder index: %w", err) // cannot happen: it was just made
	}
	f.adopt(x)
	return f.lazySnapshot(), true, nil
}

// writeUIDLines writes the UID list's lines, "<uid> <base>", from the
// index's lines, "<uid> cur/NAME", to w (buffered: safefile.WriteFrom).
func writeUIDLines(w io.Writer, lines []byte) error {
	var out []byte
	for len(lines) > 0 {
		nl := bytes.IndexByte(lines, '\n')
		line := lines[:nl]
		lines = lines[nl+1:]
		sp := bytes.IndexByte(line, ' ')
		base := line[sp+5:] // after "cur/"
		if c := bytes.IndexByte(base, ':'); c >= 0 {
			base = base[:c]
		}
		out = append(append(append(out[:0], line[:sp+1]...), base...), '\n')
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// linesSummary is Snapshot.Summary of the index's lines.
func linesSummary(lines []byte, validity uint32, n int) Summary {
	sum := Summary{Messages: n, Validity: validity, Next: uint32(n + 1)}
	for i := 0; len(lines) > 0; i++ {
		nl := bytes.IndexByte(lines, '\n')
		line := unsafe.String(unsafe.SliceData(lines), nl)
		lines = lines[nl+1:]
		base, flags := splitName(line[strings.IndexByte(line, ' ')+5:])
		sum.add(i, base, flags)
	}
	return sum
}

// firstList is a first listing (firstListing): every "cur/NAME" read,
// copied end to end into chunks (a name never spans two; from 4 KB, each
// twice the last, up to firstChunk), and after number, the sort keys of
// the messages in UID order. Nothing in it is a pointer but the chunks:
// Go's collector, which runs often while it is built (lean), does not scan
// 100,000 names, and the chunks waste at most one chunk where one buffer
// grown by doubling would leave copies behind.
type firstList struct {
	chunks [][]byte
	starts []uint32 // where each name starts: chunk<<firstChunkBits | offset
	lens   []uint16
	keys   []firstKey
	ok     bool // every name fit
}

const (
	firstChunkBits = 20
	firstChunk     = 1 << firstChunkBits // the largest chunk
	firstChunkMin  = 4 << 10             // the first; each next one twice the last
	maxFirstChunks = 1 << (32 - firstChunkBits)
)

// firstKey is a name's place in sortNames' order: t the seconds and the
// microseconds of the name's time (nameTime), j the name's index in
// starts, blen the length of its base.
type firstKey struct {
	t       uint64
	j, blen uint32
}

// firstGCChunks is the chunks past which a listing is collected at once:
// about 3 MB of names, some 40,000 messages.
const firstGCChunks = 10

// usecBits is the bits of a key's t that hold the microseconds (a
// name's are below a million).
const usecBits = 20

// add copies one listing call's names (listRels).
func (fl *firstList) add(text []byte, ends []uint32) {
	start := uint32(0)
	for _, end := range ends {
		name := text[start:end]
		start = end
		c := len(fl.chunks) - 1
		if c < 0 || len(fl.chunks[c])+len(name) > cap(fl.chunks[c]) {
			if c+1 == maxFirstChunks || len(name) > 1<<16-1 {
				fl.ok = false // 4 GB of names; a name longer than any file system's
				return
			}
			size := firstChunkMin // a small folder's listing takes a few KB
			if c >= 0 {
				size = min(2*cap(fl.chunks[c]), firstChunk)
			}
			fl.chunks = append(fl.chunks, make([]byte, 0, max(size, len(name))))
			c++
		}
		fl.starts = append(fl.starts, uint32(c)<<firstChunkBits|uint32(len(fl.chunks[c])))
		fl.lens = append(fl.lens, uint16(len(name)))
		fl.chunks[c] = append(fl.chunks[c], name...)
	}
}

// listFirst lists new/ and cur/ once, or twice when a directory changed
// during the listing or within a second before it (then a name missing
// from one listing, renamed meanwhile, is in the other: scanRels). ok is
// false when a directory changed during the second listing too, or a
// message is in new/ (the index has no place for it).
func (f *Folder) listFirst() (fl *firstList, ok bool, err error) {
	fl = &firstList{ok: true}
	f.scanned = time.Now()
	for pass := 0; pass < 2; pass++ {
		clean := true
		for i, sub := range []string{"new", "cur"} {
			dir := filepath.Join(f.Dir, sub)
			listed := len(fl.starts)
			st, err := listStamped(dir, func() error { return listRels(dir, sub, fl.add) })
			if err != nil {
				return nil, false, err
			}
			if sub == "new" && len(fl.starts) > listed || !fl.ok || !st.unchanged && pass == 1 {
				return nil, false, nil
			}
			f.stamps[i] = st.before
			clean = clean && st.clean()
		}
		if clean {
			break
		}
	}
	return fl, len(fl.starts) > 0, nil
}

// listed returns the j-th name listed, "cur/NAME".
func (fl *firstList) listed(j uint32) string {
	at := fl.starts[j]
	chunk := fl.chunks[at>>firstChunkBits]
	off := int(at & (firstChunk - 1))
	return unsafe.String(&chunk[off], int(fl.lens[j]))
}

// base returns the base of the name of k.
func (fl *firstList) base(k firstKey) string { return fl.listed(k.j)[4 : 4+k.blen] }

// number sorts the names in sortNames' order (the UIDs' order) and keeps
// one of each base: the one listed last, as the maps of scanRels would.
// It reports false for a name that a UID list line cannot hold.
func (fl *firstList) number() bool {
	keys := make([]firstKey, len(fl.starts))
	for j := range keys {
		base, _ := splitName(fl.listed(uint32(j))[4:])
		if base == "" || strings.ContainsAny(base, " \n\r/") {
			return false
		}
		s, u := nameTime(base)
		if s < 0 || s >= 1<<(64-usecBits) || u < 0 || u >= 1<<usecBits {
			return false // not the usual name: sortNames' order needs more than t
		}
		keys[j] = firstKey{uint64(s)<<usecBits | uint64(u), uint32(j), uint32(len(base))}
	}
	slices.SortFunc(keys, func(a, b firstKey) int {
		if a.t != b.t {
			if a.t < b.t {
				return -1
			}
			return 1
		}
		if c := strings.Compare(fl.base(a), fl.base(b)); c != 0 {
			return c
		}
		return cmpInt(int64(a.j), int64(b.j))
	})
	out := keys[:0]
	for _, k := range keys {
		if n := len(out); n > 0 && fl.base(out[n-1]) == fl.base(k) {
			out[n-1] = k // listed again: the later listing counts
			continue
		}
		out = append(out, k)
	}
	fl.keys = out
	return len(out) < int(^uint32(0)-1)
}

// lines returns the folder index's lines, "<uid> cur/NAME", in UID order,
// after maxIndexHead bytes of room for the head, in a buffer of the size
// they take.
func (fl *firstList) lines() []byte {
	size := maxIndexHead
	for i, k := range fl.keys {
		size += uidDigits(uint32(i+1)) + int(fl.lens[k.j]) + 2
	}
	buf := make([]byte, maxIndexHead, size)
	for i, k := range fl.keys {
		buf = strconv.AppendUint(buf, uint64(i+1), 10)
		buf = append(append(append(buf, ' '), fl.listed(k.j)...), '\n')
	}
	return buf
}

// uidDigits is the length of a UID in decimal.
func uidDigits(uid uint32) int {
	n := 1
	for ; uid >= 10; uid /= 10 {
		n++
	}
	return n
}
