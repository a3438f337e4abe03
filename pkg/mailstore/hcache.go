package mailstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The header cache of a folder, in the file HeaderCacheName beside the UID
// list, answers ENVELOPE, header-field FETCH, header SEARCH and (with
// hstruct.go) BODYSTRUCTURE on a folder read before without opening every
// message file.
//
// What an entry keeps was chosen by measurement. Reading the files, a
// search of one header field over the benchmark's 100,000 messages
// (bench/imap) took 2.7 s, 27 µs a message (open, read, close, parse).
// Their headers are 560 bytes on average, of which the fields of
// cachedFields are 300 (the ENVELOPE's alone 260, the Subject 50); real
// headers are 2-8 KB (Received, DKIM and ARC chains) with about the same
// few hundred bytes of those fields. A first version kept whole headers
// of up to 2 KB in memory: the session's peak RSS grew by 300-540 MB
// while building and reading 100,000 of them. So an entry keeps only the
// lines of cachedFields, byte for byte and in order, with the blank line
// (the whole header when that is at most hcSlack bytes more, so that it
// also answers RFC822.HEADER); it answers requests for those fields only,
// and anything else reads the message file. A header that does not split
// into well-formed fields (where the IMAP layer's parser might stop) is
// kept only when it is that small, whole. Parsed fields were not kept: the
// IMAP layer parses a few hundred bytes of header in about a microsecond,
// and raw lines answer BODY[HEADER.FIELDS] exactly. In memory a Folder
// keeps only where each record is (a hash of the base name → offset and
// length, 24 bytes and the map's overhead; imapd --listen keeps them for
// its next sessions, hcshare.go); records are read from the file in
// windows of hcChunk bytes, in file order for a search, and their
// checksum and name are checked at each use.
//
// The file is a line "mailsrv-headers 2" and records, appended under the
// lock file HeaderCacheName.lock in one write per command (or per
// hcPendingMax bytes learned; a command waits at most hcLockWait for the
// lock, and drops what it learned past that):
//
//	<crc32c of the payload, 8 hex> <payload bytes>\n<payload>
//	payload: <base> <inode> <size> <mtime ns> <whole 0|1> <cur/ stamp> <structure bytes> <envelope bytes>\n<header><structure><envelope>
//
// (structure: what the caller kept from the whole message, hstruct.go;
// envelope: what it kept from the header, hkept.go. Version 1 had no
// envelope; a file of another version is rewritten.)
//
// A later record for a base replaces an earlier one. Entries are never
// trusted blindly. One is used as it is only when cur/ still has the
// stamp it had, settled, when the entry was read from there (or last
// checked), and had it at the start of the current command (HeaderBatch):
// no file was renamed into, out of or within cur/ since, so the message's
// file is there, unchanged. Otherwise the message must be in the folder's
// listing (one that is not is gone: its entry is ignored, and dropped at
// the next rewrite) and its file's inode, size and mtime must match the
// entry's. Reading stops at the first record that is
// incomplete, malformed or fails its checksum (checked again at each use:
// the file may be changed in place); a writer that finds such a record
// (under the lock, so no one is writing it) rewrites the file with the
// good records of listed messages, as it does when most records are dead
// or the file is missing or not a header cache. A Maildir message's
// content never changes under its base name (only the flags in its name
// do); a file rewritten in place with the same inode, size and mtime is
// the one change this cannot see.
const (
	HeaderCacheName = "mailsrv-headers"
	hcLockName      = "mailsrv-headers.lock"
	hcMagic         = "mailsrv-headers 2\n"
	hcSlack         = 64
	hcMaxEntry      = 8192
	hcChunk         = 256 << 10
	hcPendingMax    = 1 << 20
	hcLockWait      = time.Second
	hcMaxStructure  = 16384 // a larger structure is not kept
	hcMaxEnvelope   = 16384 // nor a larger envelope
)

// hcMaxFile bounds the file: past it, new entries are not written (a
// rewrite drops the dead ones first).
var hcMaxFile int64 = 256 << 20

// cachedFields are the header fields kept of a large header: those of the
// IMAP ENVELOPE (RFC 3501 section 7.4.2), and those that mail clients ask
// for when they list a folder (References, priority, Content-Type, ...).
var cachedFields = map[string]bool{
	"date": true, "subject": true, "from": true, "sender": true, "reply-to": true,
	"to": true, "cc": true, "bcc": true, "in-reply-to": true, "message-id": true,
	"references": true, "content-type": true, "priority": true, "x-priority": true,
	"importance": true, "newsgroups": true, "list-id": true, "list-post": true,
}

// hcSlot is where one message's record is. Slots are keyed by a hash of
// the base name; the record holds the name, and is checked at every use
// (checksum and name), so that a collision, or a file changed in place,
// is a miss. Only the record's place is read when the file is: what it
// says is decoded at use (a session reads the places of 100,000 records,
// and may use a hundred).
type hcSlot struct {
	off     int64  // of the record, in the file, or in pendData when pend
	n       uint32 // record length
	checked uint16 // index in stamps of a cur/ stamp the message file was found unchanged at, 0 if none
	pend    bool
}

// hcEntry is what a record says about the message file.
type hcEntry struct {
	ino   uint64
	size  int64
	mtime int64
	whole bool
	stamp dirStamp // cur/ when the entry was read, settled; zero if not
	// structure is what the caller derived from the whole message
	// (KeepStructure: imap's BODYSTRUCTURE), empty if none
	structure []byte
	// envelope is what the caller derived from the header (Kept:
	// imap's ENVELOPE), empty if none
	envelope []byte
}

// headerCache is the file as read by one Folder, and what it learned
// since (pendData, written at the end of a batch or when it grows). Only
// the entries' places are kept in memory; their records are read from the
// file in windows of hcChunk bytes (a search reads them in file order).
type headerCache struct {
	base     *hcBase           // places kept by the process (hcshare.go), under m
	m        map[uint64]hcSlot // this Folder's own
	room     int               // the slots m was made for (0: as it grew)
	stamps   []dirStamp        // stamps[0] is none
	stampIdx map[dirStamp]uint16
	ino      uint64
	end      int64 // bytes of the file read (whole records)
	records  int   // records read (for dead ones: records - live)
	damaged  bool  // a bad record: the next write rewrites the file
	pendData []byte
	fh       *os.File // the file of m, during a batch
	win      []byte   // a window of the file, at winOff
	winOff   int64
	// next is the offset of the record after the last one used from the
	// file (0: none); overridden holds the keys whose records may not be
	// their base's current one (hcseq.go).
	next       int64
	overridden map[uint64]bool
	inTurn     int    // records found that way
	reuse      bool   // the batch's caller keeps no header past the next read
	rbuf       []byte // message headers are read into it (hcread.go)
	// A header read from its file is made CRLF into crlf when the batch
	// reuses buffers (readHeaderCaching returns it), and what its entry
	// keeps of it goes into kept (add copies that into pendData): a
	// first search made two copies of each of 100,000 headers, garbage.
	crlf, kept []byte
	reads      int    // message files read in the batch
	release    func() // ends the batch's lean (learnMany), nil if none
	dirfd      int    // the folder directory during a batch, if hasDir
	hasDir     bool
	dirTried   bool

	batch   bool     // in a HeaderBatch
	begun   bool     // the batch has read the file
	trusted bool     // batch: cur/ settled and unchanged since the listing
	cur     dirStamp // cur/ at the batch's start, when trusted

	lastFields []string // the fields serves was last asked about
	lastServed bool     // and its answer for an entry not whole
}

func newHeaderCache() *headerCache {
	return &headerCache{m: map[uint64]hcSlot{},
		stamps: []dirStamp{{}}, stampIdx: map[dirStamp]uint16{}}
}

func (hc *headerCache) key(base string) uint64 { return maphash.String(hcSeed, base) }

func (hc *headerCache) keyBytes(base []byte) uint64 { return maphash.Bytes(hcSeed, base) }

// stampOf returns the index of st in stamps, adding it (0 when full).
func (hc *headerCache) stampOf(st dirStamp) uint16 {
	if st == (dirStamp{}) {
		return 0
	}
	if i, ok := hc.stampIdx[st]; ok {
		return i
	}
	if len(hc.stamps) >= 1<<16-1 {
		return 0
	}
	hc.stamps = append(hc.stamps, st)
	hc.stampIdx[st] = uint16(len(hc.stamps) - 1)
	return uint16(len(hc.stamps) - 1)
}

// HeaderBatch starts a command that reads headers of many messages (FETCH,
// SEARCH): it checks once whether the listing is current, reads what other
// processes added to the cache, and the function it returns writes what
// this command learned. A cache that cannot be read or written is only
// slower.
func (f *Folder) HeaderBatch() (end func() error) {
	if f.hc == nil {
		f.hc = newHeaderCache()
	}
	hc := f.hc
	hc.batch, hc.begun, hc.reuse, hc.reads = true, false, false, 0
	// Small enough to be inlined, with its caller: the function returned
	// then stays on the caller's stack.
	return func() error { return f.endBatch(hc) }
}

// endBatch ends hc's batch: it writes what was learned and releases lean
// if the batch took it (of a batch not ended, lean is released at the end
// of the next).
func (f *Folder) endBatch(hc *headerCache) error {
	hc.batch, hc.begun, hc.reuse = false, false, false
	var err error
	if len(hc.pendData) > 0 || hc.damaged {
		err = hc.flush(f) // a damaged file is rewritten
	}
	if hc.fh != nil {
		_ = hc.fh.Close() // read only
		hc.fh = nil
	}
	hc.closeDir()
	hc.win = nil
	hc.endLean()
	if err != nil {
		f.cacheErr = err
	}
	return err
}

// begin starts a batch at its first read (a FETCH of flags only need not
// read the cache).
func (hc *headerCache) begin(f *Folder) {
	hc.begun, hc.trusted, hc.cur = true, false, dirStamp{}
	if f.listed() && !f.dirty() {
		hc.trusted, hc.cur = true, f.stamps[1]
	}
	if err := hc.refresh(f.Dir, f.listedCount()); err != nil {
		f.cacheErr = err
	}
	hc.share(f.Dir)
}

// ReadHeaderFields is ReadHeader for a caller that needs only the header
// fields named (nil: the whole header): what it returns holds every line
// of those fields, byte for byte and in order, and ends with the blank
// line. Within a HeaderBatch it answers from the header cache when it
// can, and caches what it reads.
func (f *Folder) ReadHeaderFields(base string, fields []string) ([]byte, time.Time, error) {
	hc := f.hc
	if hc == nil || !hc.batch {
		return f.ReadHeader(base)
	}
	if !hc.begun {
		hc.begin(f)
	}
	e, hdr, ok, err := f.cached(base, fields)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !ok {
		hdr, e, err := f.readHeaderCaching(base)
		return hdr, time.Unix(0, e.mtime), err
	}
	return hdr, time.Unix(0, e.mtime), nil
}

// cached returns base's entry and header when they may be used for
// fields (see the rules above); ErrGone when the message is gone.
func (f *Folder) cached(base string, fields []string) (hcEntry, []byte, bool, error) {
	hc := f.hc
	if !hc.begun {
		hc.begin(f)
	}
	if hc.trusted {
		if e, hdr, ok := hc.nextRecord(base); ok && e.stamp == hc.cur && hc.serves(e, fields) {
			return e, hdr, true, nil // the record that follows, in turn (hcseq.go)
		}
	}
	sl, e, hdr, ok := hc.lookup(base)
	if ok && hc.trusted && hc.serves(e, fields) && (e.stamp == hc.cur || sl.checked != 0 && hc.stamps[sl.checked] == hc.cur) {
		// cur/ has not changed since the entry was read (or checked)
		// from there: the file is still there, as it was.
		return e, hdr, true, nil
	}
	rel, listed := f.relOf(base)
	if !ok || !listed || !hc.serves(e, fields) {
		return e, nil, false, nil // gone, or listed since: the reader rescans
	}
	var st syscall.Stat_t
	err := f.retry(base, func(p string) error {
		if err := syscall.Stat(p, &st); err != nil {
			return &os.PathError{Op: "stat", Path: p, Err: err}
		}
		return nil
	})
	if err != nil {
		return e, nil, false, err // ErrGone: expunged
	}
	if st.Ino != e.ino || st.Size != e.size || st.Mtim.Nano() != e.mtime {
		return e, nil, false, nil
	}
	if hc.trusted && strings.HasPrefix(rel, "cur/") {
		sl.checked = hc.stampOf(hc.cur) // checked against this listing: no stat next time
		hc.m[hc.key(base)] = sl
	}
	return e, hdr, true, nil
}

// lookup returns base's slot, and its entry and header from its record,
// checked; a record that fails is forgotten, and the file marked damaged.
func (hc *headerCache) lookup(base string) (hcSlot, hcEntry, []byte, bool) {
	sl, ok := hc.slot(hc.key(base))
	if !ok {
		return sl, hcEntry{}, nil, false
	}
	var rec []byte
	if sl.pend {
		rec = hc.pendData[sl.off : sl.off+int64(sl.n)]
	} else {
		rec = hc.window(sl.off, int(sl.n))
	}
	e, hdr, err := decodeRecord(rec, base)
	if err != nil {
		hc.damaged = true // changed in place: rewritten at the next write
		hc.forget(hc.key(base))
		return sl, hcEntry{}, nil, false
	}
	if !sl.pend {
		hc.next = sl.off + int64(sl.n)
	}
	return sl, e, hdr, true
}

// decodeRecord checks a whole record (its checksum, that it is base's) and
// decodes it.
func decodeRecord(rec []byte, base string) (hcEntry, []byte, error) {
	nl := bytes.IndexByte(rec, '\n')
	if nl < 9 || rec[8] != ' ' {
		return hcEntry{}, nil, errBadRecord
	}
	sum, ok := parseU64(rec[:8], 16)
	payload := rec[nl+1:]
	if !ok || crc32.Checksum(payload, castagnoli) != uint32(sum) || len(payload) <= len(base) ||
		string(payload[:len(base)]) != base || payload[len(base)] != ' ' {
		return hcEntry{}, nil, errBadRecord
	}
	pl := bytes.IndexByte(payload, '\n')
	if pl < 0 {
		return hcEntry{}, nil, errBadRecord
	}
	line := payload[len(base)+1 : pl]
	var v [10]uint64
	for i := range v {
		field := line
		if sp := bytes.IndexByte(line, ' '); sp >= 0 {
			field, line = line[:sp], line[sp+1:]
		} else {
			line = nil
		}
		x, ok := parseU64(field, 10)
		if !ok || (i < len(v)-1) == (line == nil) {
			return hcEntry{}, nil, errBadRecord
		}
		v[i] = x
	}
	rest := payload[pl+1:]
	if v[3] > 1 || v[8] > uint64(len(rest)) || v[9] > uint64(len(rest))-v[8] {
		return hcEntry{}, nil, errBadRecord
	}
	envAt := len(rest) - int(v[9])
	split := envAt - int(v[8])
	e := hcEntry{ino: v[0], size: int64(v[1]), mtime: int64(v[2]), whole: v[3] == 1,
		stamp:     dirStamp{mtime: int64(v[4]), ctime: int64(v[5]), ino: v[6], size: int64(v[7])},
		structure: rest[split:envAt:envAt], envelope: rest[envAt:]}
	return e, rest[:split:split], nil
}

// window returns n bytes of the file at off, reading hcChunk bytes (or n)
// into a new buffer when they are not in the last one: a slice returned
// stays valid.
func (hc *headerCache) window(off int64, n int) []byte {
	if n <= 0 {
		return nil
	}
	if hc.win != nil && off >= hc.winOff && off+int64(n) <= hc.winOff+int64(len(hc.win)) {
		return hc.win[off-hc.winOff : off-hc.winOff+int64(n)]
	}
	if hc.fh == nil || off+int64(n) > hc.end {
		return nil
	}
	size := min(max(int64(n), hcChunk), hc.end-off)
	buf := hc.scratch(size) // hcseq.go
	got, err := hc.fh.ReadAt(buf, off)
	if got < n {
		_ = err // short: truncated in place; the caller reads the message
		return nil
	}
	hc.win, hc.winOff = buf[:got], off
	return hc.win[:n]
}

// serves reports whether the entry holds every line of fields.
func (hc *headerCache) serves(e hcEntry, fields []string) bool {
	if e.whole {
		return true
	}
	if fields == nil {
		return false
	}
	if hc.lastFields != nil && slices.Equal(fields, hc.lastFields) { // a command asks the same of every message
		return hc.lastServed
	}
	served := true
	for _, k := range fields {
		served = served && isCachedField(k)
	}
	hc.lastFields, hc.lastServed = append([]string{}, fields...), served // not nil
	return served
}

// isCachedField reports whether a field name (any case) is in
// cachedFields, without allocating.
func isCachedField[S string | []byte](k S) bool {
	var buf [16]byte
	if len(k) > len(buf) {
		return false // none is longer
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return cachedFields[string(buf[:len(k)])]
}

// readHeaderCaching reads the header from the file, as ReadHeader does,
// and adds an entry for it to the pending ones; it returns the file's
// identity (inode, size, mtime) as an entry.
func (f *Folder) readHeaderCaching(base string) ([]byte, hcEntry, error) {
	var st syscall.Stat_t
	hdr, err := f.headerFile(base, &st)
	if err != nil {
		return nil, hcEntry{}, err
	}
	if f.hc.reads++; f.hc.reads == hcManyReads {
		f.hc.learnMany(f.listedCount())
	}
	if f.hc.reuse {
		f.hc.crlf = appendCRLF(f.hc.crlf[:0], hdr) // the caller drops it at its next read
		hdr = f.hc.crlf
	} else {
		hdr = appendCRLF(nil, hdr) // a copy of the reused buffer (hcread.go)
	}
	mtime := st.Mtim.Nano()
	id := hcEntry{ino: st.Ino, size: st.Size, mtime: mtime}
	if _, e, _, ok := f.hc.lookup(base); ok && e.ino == st.Ino && e.size == st.Size && e.mtime == mtime {
		return hdr, id, nil // kept already, without what this read needed
	}
	f.hc.kept = slices.Grow(f.hc.kept[:0], min(len(hdr), hcMaxEntry)) // as reduceHeader would make it
	if keep, whole, ok := reduceHeader(f.hc.kept, hdr); ok {
		e := hcEntry{ino: st.Ino, size: st.Size, mtime: mtime, whole: whole}
		if rel, _ := f.relOf(base); f.hc.trusted && strings.HasPrefix(rel, "cur/") {
			e.stamp = f.hc.cur
		}
		f.hc.add(base, e, keep)
		if len(f.hc.pendData) >= hcPendingMax {
			if err := f.hc.flush(f); err != nil {
				f.cacheErr = err
			}
		}
	}
	return hdr, id, nil
}

// hcManyReads is the number of message files a batch reads before it is
// taken to be learning the headers of most of the folder (a first search
// or FETCH of it), and prepares for that (learnMany). A batch that reads a
// few files (messages new since the last) does not pay for it.
const hcManyReads = 256

// learnMany holds lean (lean.go) until the end of the batch: reading
// 100,000 files still makes garbage (each name as openat takes it, what
// the caller makes of each header, the SELECT's before it), and Go's
// default GC target let the heap reach twice what is live. And it makes
// room in m at once for a slot of each listed message that the base has
// none of: grown by doubling to 100,000 slots, the map left its smaller
// tables behind as garbage.
func (hc *headerCache) learnMany(listed int) {
	if hc.release == nil {
		hc.release = lean()
	}
	own := listed
	if hc.base != nil {
		own -= len(hc.base.m)
	}
	if own <= hc.room || own <= len(hc.m) {
		return
	}
	m := make(map[uint64]hcSlot, own)
	for k, sl := range hc.m {
		m[k] = sl
	}
	hc.m, hc.room = m, own
}

// endLean releases the batch's lean, if it took it.
func (hc *headerCache) endLean() {
	if hc.release != nil {
		hc.release()
		hc.release = nil
	}
}

// headerFile reads base's header from its file into the cache's reused
// buffer (hcread.go). The file is opened as it is listed, in the folder
// directory, without the path that f.retry makes (a string for each of a
// first search's 100,000 messages); f.retry finds one renamed since.
func (f *Folder) headerFile(base string, st *syscall.Stat_t) ([]byte, error) {
	if rel, ok := f.relOf(base); ok {
		if hdr, err := f.hc.readHeaderIn(f.Dir, rel, st); !errors.Is(err, os.ErrNotExist) {
			return hdr, err
		}
	}
	var hdr []byte
	err := f.retry(base, func(p string) error {
		var err error
		hdr, err = f.hc.readHeaderFile(f.Dir, p, st)
		return err
	})
	return hdr, err
}

// readHeaderBlock reads up to and with the blank line that ends the
// header, at most maxHeader bytes.
func readHeaderBlock(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeader), 4096)
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			return hdr, nil
		}
	}
}

// reduceHeader returns what an entry keeps of a header (CRLF line
// endings): the lines of cachedFields and the blank line, appended to
// dst (a buffer to reuse, empty), or all of h when that is at most hcSlack
// bytes more; ok is false when nothing is kept.
func reduceHeader(dst, h []byte) (keep []byte, whole, ok bool) {
	if !bytes.HasSuffix(h, []byte("\r\n\r\n")) && !bytes.Equal(h, []byte("\r\n")) {
		// no blank line: kept whole if small, so that it is answered as read
		return h, true, len(h) <= hcSlack
	}
	out := dst[:0]
	if cap(out) < min(len(h), hcMaxEntry) {
		out = make([]byte, 0, min(len(h), hcMaxEntry)) // one allocation for most
	}
	in, started := false, false
	for rest := h; len(rest) > 0; {
		i := bytes.Index(rest, []byte("\r\n")) + 2
		line := rest[:i]
		rest = rest[i:]
		switch {
		case i == 2: // the blank line: the end
			out = append(out, line...)
			if len(h) <= len(out)+hcSlack {
				return h, true, true
			}
			return out, false, true
		case line[0] == ' ' || line[0] == '\t':
			if !started {
				return h, true, len(h) <= hcSlack // continues nothing
			}
		default:
			name, _, found := bytes.Cut(line, []byte(":"))
			if !found || !fieldName(name) {
				return h, true, len(h) <= hcSlack
			}
			in, started = isCachedField(name), true
		}
		if in {
			out = append(out, line...)
		}
		if len(out) > hcMaxEntry {
			return nil, false, false
		}
	}
	return nil, false, false
}

// fieldName reports whether b is a header field name (RFC 5322 section
// 3.6.8: printable US-ASCII but ':').
func fieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return len(b) > 0
}

// add formats an entry learned from a file as a record in pendData. A
// pending record of base that ends pendData is replaced in place (what a
// FETCH keeps after the read that added it).
func (hc *headerCache) add(base string, e hcEntry, hdr []byte) {
	if sl, ok := hc.m[hc.key(base)]; ok && sl.pend && sl.off+int64(sl.n) == int64(len(hc.pendData)) {
		rec := appendRecord(nil, base, e, hdr) // e and hdr may be in the old record
		hc.pendData = append(hc.pendData[:sl.off], rec...)
		hc.setSlot(hc.key(base), hcSlot{off: sl.off, n: uint32(len(rec)), pend: true}) // hcseq.go
		return
	}
	start := len(hc.pendData)
	// 64 KB for a command that learns a few entries, then at once the
	// size at which it is flushed: grown by doubling, a first search's
	// 100,000 records left 1 and 2 MB copies behind each 4 MB written.
	// (The record's two lines of numbers take at most 10 of 20 digits
	// and the head's 32 bytes: with less, append grew the buffer itself.)
	need := len(hc.pendData) + len(base) + len(hdr) + len(e.structure) + len(e.envelope) + 256
	if need > cap(hc.pendData) {
		grown := make([]byte, len(hc.pendData), max(need, 64<<10, min(hcPendingMax+64<<10, 64*cap(hc.pendData))))
		copy(grown, hc.pendData)
		hc.pendData = grown
	}
	hc.pendData = appendRecord(hc.pendData, base, e, hdr)
	hc.setSlot(hc.key(base), hcSlot{off: int64(start), n: uint32(len(hc.pendData) - start), pend: true}) // hcseq.go
}

// appendRecord formats one record.
func appendRecord(out []byte, base string, e hcEntry, hdr []byte) []byte {
	whole := 0
	if e.whole {
		whole = 1
	}
	// As fmt's "%s %d %d %d %d %s %d %d\n" and "%08x %d\n" would write
	// them, without its cost on a first search's 100,000 records. The
	// line is written in out and the head put before it once its length
	// is known: a line in an array of its own went to the heap (crc32
	// takes it through a function value, which escape analysis cannot
	// follow), 256 bytes of garbage a record.
	start := len(out)
	out = strconv.AppendUint(append(append(out, base...), ' '), e.ino, 10)
	for _, v := range []int64{e.size, e.mtime, int64(whole), e.stamp.mtime, e.stamp.ctime} {
		out = strconv.AppendInt(append(out, ' '), v, 10)
	}
	out = strconv.AppendUint(append(out, ' '), e.stamp.ino, 10)
	for _, v := range []int64{e.stamp.size, int64(len(e.structure)), int64(len(e.envelope))} {
		out = strconv.AppendInt(append(out, ' '), v, 10)
	}
	out = append(out, '\n')
	n := len(out) - start // the line's
	sum := crc32.Update(crc32.Checksum(out[start:], castagnoli), castagnoli, hdr)
	sum = crc32.Update(sum, castagnoli, e.structure)
	sum = crc32.Update(sum, castagnoli, e.envelope)
	var hb [32]byte
	head := strconv.AppendUint(hb[:0], uint64(sum)|1<<32, 16)[1:] // 8 digits
	head = append(strconv.AppendInt(append(head, ' '), int64(n+len(hdr)+len(e.structure)+len(e.envelope)), 10), '\n')
	out = append(out, head...) // room for it
	copy(out[start+len(head):], out[start:start+n])
	copy(out[start:], head)
	out = append(out, hdr...)
	return append(append(out, e.structure...), e.envelope...)
}

// refresh reads the records appended since the last read, or the whole
// file when it was replaced, and keeps it open for the batch.
func (hc *headerCache) refresh(dir string, listed int) error {
	fh, err := os.Open(filepath.Join(dir, HeaderCacheName))
	if errors.Is(err, os.ErrNotExist) {
		hc.reset(nil, 0)
		return nil
	}
	if err != nil {
		return fmt.Errorf("header cache: %w", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(fh.Fd()), &st); err != nil {
		_ = fh.Close()
		return fmt.Errorf("header cache: %w", err)
	}
	if st.Ino != hc.ino || st.Size < hc.end || hc.end == 0 || hc.fh == nil {
		if st.Ino != hc.ino || st.Size < hc.end || hc.end == 0 {
			hc.reset(fh, st.Ino)
			hc.adoptShared(dir, st.Ino, st.Size) // hcshare.go
			if hc.base == nil && len(hc.m) == 0 {
				// Records are 300-600 bytes (more with envelopes kept), and
				// a message's later record replaces its earlier one: the
				// listing's count, when known, bounds the slots.
				n := st.Size / 300
				if listed > 0 {
					n = min(n, int64(listed+listed/8))
				}
				if n > int64(hc.room) {
					hc.m, hc.room = make(map[uint64]hcSlot, n), int(n)
				}
			}
		} else {
			hc.fh = fh
		}
	} else {
		_ = fh.Close() // the same file is open
	}
	var chunk []byte // one for the whole read: parse keeps nothing of it
	for hc.end < st.Size && !hc.damaged {
		if chunk == nil {
			chunk = make([]byte, min(hcChunk, st.Size-hc.end))
		}
		buf := chunk[:min(int64(len(chunk)), st.Size-hc.end)]
		n, err := hc.fh.ReadAt(buf, hc.end)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("header cache: %w", err)
		}
		used := hc.parse(buf[:n], n < len(buf) || hc.end+int64(n) >= st.Size)
		if used == 0 {
			break // an incomplete record at the end: being written
		}
	}
	return nil
}

// reset forgets what was read (pending entries are kept), for the file
// fh with inode ino (nil, 0: none).
func (hc *headerCache) reset(fh *os.File, ino uint64) {
	if hc.fh != nil && hc.fh != fh {
		_ = hc.fh.Close() // read only
	}
	for k, sl := range hc.m {
		if !sl.pend {
			delete(hc.m, k) // in place: the map keeps its room (learnMany)
		}
	}
	hc.fh, hc.ino, hc.end, hc.records, hc.damaged, hc.win = fh, ino, 0, 0, false, nil
	hc.base, hc.next, hc.overridden = nil, 0, nil
}

// parse reads the records in buf, which starts at hc.end, and returns the
// bytes used; it stops at the first incomplete or bad record (bad: marks
// the cache damaged). last says that buf reaches the end of the file.
func (hc *headerCache) parse(buf []byte, last bool) int {
	used := 0
	if hc.end == 0 {
		if !bytes.HasPrefix(buf, []byte(hcMagic)) {
			hc.damaged = len(buf) >= len(hcMagic) || !bytes.HasPrefix([]byte(hcMagic), buf)
			return 0
		}
		used = len(hcMagic)
	}
	for used < len(buf) {
		base, n, err := scanRecord(buf[used:])
		if errors.Is(err, io.ErrUnexpectedEOF) && !last {
			break // the rest is in the next chunk
		}
		if err != nil {
			hc.damaged = !errors.Is(err, io.ErrUnexpectedEOF)
			break
		}
		hc.setSlot(hc.keyBytes(base), hcSlot{off: hc.end + int64(used), n: uint32(n)}) // hcseq.go
		hc.records++
		used += n
	}
	hc.end += int64(used)
	return used
}

var errBadRecord = errors.New("header cache: bad record")

// scanRecord checks the record at the start of buf (its form and
// checksum) and returns its base name and length; what it says is decoded
// when it is used (decodeRecord, which checks it again: the file may have
// been changed in place since).
func scanRecord(buf []byte) (base []byte, n int, err error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > 32 {
			return nil, 0, errBadRecord
		}
		return nil, 0, io.ErrUnexpectedEOF
	}
	if nl < 10 || buf[8] != ' ' {
		return nil, 0, errBadRecord
	}
	sum, ok1 := parseU64(buf[:8], 16)
	size, ok2 := parseU64(buf[9:nl], 10)
	if !ok1 || !ok2 || size == 0 || size > hcMaxEntry+hcMaxStructure+hcMaxEnvelope+1024 {
		return nil, 0, errBadRecord
	}
	if uint64(len(buf)) < uint64(nl+1)+size {
		return nil, 0, io.ErrUnexpectedEOF
	}
	payload := buf[nl+1 : nl+1+int(size)]
	if crc32.Checksum(payload, castagnoli) != uint32(sum) {
		return nil, 0, errBadRecord
	}
	sp := bytes.IndexByte(payload, ' ')
	if sp <= 0 || bytes.IndexByte(payload[:sp], '\n') >= 0 {
		return nil, 0, errBadRecord
	}
	return payload[:sp], nl + 1 + int(size), nil
}

// parseU64 parses digits of base 10 or 16 (lower case), at most 64 bits.
func parseU64(b []byte, base uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		n = n*base + d
	}
	return n, true
}

// flush writes the pending records under the lock: appended, or in a
// rewrite of the file when it is missing, damaged or mostly dead.
func (hc *headerCache) flush(f *Folder) error {
	// A command does not wait long for a cache: what it learned is
	// dropped if another process holds the lock (or left it stale).
	unlock, err := lockWithin(filepath.Join(f.Dir, hcLockName), hcLockWait)
	if err != nil {
		hc.dropPending()
		return err
	}
	defer func() { _ = unlock() }()
	if err := hc.refresh(f.Dir, f.listedCount()); err != nil {
		hc.dropPending()
		return err
	}
	path := filepath.Join(f.Dir, HeaderCacheName)
	fi, err := os.Stat(path)
	listed := f.listedCount()
	switch {
	case errors.Is(err, os.ErrNotExist):
		return hc.rewrite(f)
	case err != nil:
		hc.dropPending()
		return fmt.Errorf("header cache: %w", err)
	case hc.damaged || fi.Size() != hc.end || hc.end < int64(len(hcMagic)) ||
		hc.records-listed > max(1000, listed):
		// Under the lock no one is appending: bytes past the last good
		// record are damage.
		return hc.rewrite(f)
	}
	if hc.end+int64(len(hc.pendData)) > hcMaxFile {
		hc.dropPending()
		return nil
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0600)
	if err != nil {
		hc.dropPending()
		return fmt.Errorf("header cache: %w", err)
	}
	_, err = fh.Write(hc.pendData)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		hc.dropPending()
		return fmt.Errorf("header cache: %w", err)
	}
	// The file was hc.end bytes long under our lock: the records now
	// follow there.
	for k, sl := range hc.m {
		if sl.pend {
			sl.off, sl.pend = sl.off+hc.end, false
			hc.m[k] = sl
			hc.records++
		}
	}
	hc.end += int64(len(hc.pendData))
	hc.clearPending()
	return nil
}

// dropPending forgets the pending entries (they could not be written).
func (hc *headerCache) dropPending() {
	for k, sl := range hc.m {
		if sl.pend {
			delete(hc.m, k)
		}
	}
	hc.clearPending()
}

// clearPending empties pendData once its records are written (or
// dropped). When the batch reuses buffers its caller holds no header of a
// pending record (lookup's) past its next read, and the buffer is kept
// for the next records: a first search of 100,000 messages left 1 MB of
// garbage at each of its 50 writes. Else a caller (FETCH) may still hold
// one, and the buffer is let go.
func (hc *headerCache) clearPending() {
	if hc.reuse {
		hc.pendData = hc.pendData[:0]
	} else {
		hc.pendData = nil
	}
}

// rewrite replaces the file with the records of listed messages, in UID
// order, under the lock the caller holds.
func (hc *headerCache) rewrite(f *Folder) error {
	if hc.fh == nil && hc.ino != 0 {
		hc.reset(nil, 0)
	}
	// Written as it is read, not built in memory: the file may be tens of
	// megabytes (hcMaxFile at most).
	err := writeCacheFrom(filepath.Join(f.Dir, HeaderCacheName), func(fh io.Writer) error {
		w := bufio.NewWriterSize(fh, 64<<10)
		w.WriteString(hcMagic)
		size := int64(len(hcMagic))
		for base := range f.numbered() {
			sl, ok := hc.slot(hc.key(base))
			if !ok || size+int64(sl.n) > hcMaxFile {
				continue
			}
			var rec []byte
			if sl.pend {
				rec = hc.pendData[sl.off : sl.off+int64(sl.n)]
			} else {
				rec = hc.window(sl.off, int(sl.n))
			}
			if _, _, err := decodeRecord(rec, base); err == nil {
				w.Write(rec)
				size += int64(len(rec))
			}
		}
		return w.Flush() // the bufio.Writer keeps its first error
	})
	hc.clearPending()
	hc.reset(nil, 0)
	clear(hc.m) // the pending records are in the file now; the map keeps its room
	if err != nil {
		return err
	}
	return hc.refresh(f.Dir, f.listedCount())
}

// String describes the cache, for tests and logs.
func (hc *headerCache) String() string {
	return "entries=" + strconv.Itoa(len(hc.m)) + " records=" + strconv.Itoa(hc.records) +
		" bytes=" + strconv.FormatInt(hc.end, 10) + " damaged=" + strconv.FormatBool(hc.damaged) +
		" in-turn=" + strconv.Itoa(hc.inTurn)
}

// numbered yields the base of each listed message that has a UID, in
// UID order: an adopted index's snapshot as it is, without its maps.
func (f *Folder) numbered() iter.Seq[string] {
	return func(yield func(string) bool) {
		if z := f.lazy; z != nil {
			for _, m := range z.msgs {
				if !yield(m.Base) {
					return
				}
			}
			return
		}
		f.ul.entries()
		for _, ent := range f.ul.order {
			if _, ok := f.names[ent.base]; !ok || f.ul.uidOf(ent.base) != ent.uid {
				continue
			}
			if !yield(ent.base) {
				return
			}
		}
	}
}

// listedCount is the number of messages of the last snapshot, 0 before
// one: a size hint for the header cache's slots.
func (f *Folder) listedCount() int {
	if f.snap == nil {
		return 0
	}
	return len(f.snap.Msgs)
}
