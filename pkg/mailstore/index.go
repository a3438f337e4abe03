package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// The folder index, in the file IndexName beside the UID list, lets a new
// process (imapd under tcpserver or inetd: a process per session) skip
// listing a large cur/ when nothing changed since another process listed
// it. It is the listing the in-process cache (cache.go) keeps, on disk:
//
//	mailsrv-index 2 <crc32c of the rest, hex> <bytes of the rest> <crc32c of the head, hex> <bytes of the head>
//	S <new/ stamp> <cur/ stamp> <listing start, ns> <seenNext>
//	U <UID list inode> <UID list bytes read>
//	N <messages> <first unseen, 1-based, 0 none> <UIDVALIDITY> <UIDNEXT> <unseen> <deleted> <size, -1 unknown>
//	<the UID list's first line, as read>
//	<uid> <base>        a line of the UID list whose message was not listed
//	<uid> cur/<name>    a line of the UID list and the file listed for it
//
// The head is the four lines after the first: with its own checksum, it
// is all a SELECT needs while nothing changed (peek.go), read without the
// rest. The N line summarizes the snapshot the whole file gives.
// A stamp is "mtime ctime inode size" of the directory, in nanoseconds.
// It is written only after a listing that the in-process cache would keep:
// new/ empty, both stamps more than a second older than the listing (see
// scan), every listed message numbered. A process adopts it when new/ and
// cur/ still have those stamps: no file was added, removed or renamed
// since (a rename sets the directory's mtime and ctime). The UID list is
// then read from where the index stopped, or all of it if it was
// rewritten. The file is written to a temporary name and renamed, without
// fsync: it is a cache, and a torn or damaged file fails its checksum and
// is ignored; the next listing rewrites it.
const (
	IndexName  = "mailsrv-index"
	indexMagic = "mailsrv-index 2"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadIndex marks an index that does not parse.
var errBadIndex = errors.New("folder index damaged")

// saveIndex writes the index after a listing (scanned) that may be kept:
// nothing in new/, both stamps settled, every listed message in snap. A
// failure is kept for CacheErr: the folder works without the index. It
// returns what it wrote after the file's first line, or nil.
func (f *Folder) saveIndex(snap Snapshot, scanned bool) []byte {
	if !scanned {
		return nil
	}
	f.load()
	f.ul.entries()
	if len(snap.Msgs) != len(f.names) || len(f.ul.order) == 0 || f.ul.damaged {
		return nil
	}
	for i := range f.stamps {
		if !f.stamps[i].settled(f.scanned) {
			return nil
		}
	}
	// Every listed message is in snap (above): none in new/ is none there,
	// and the array is quicker to go through than the map.
	for i := range snap.Msgs {
		if snap.Msgs[i].InNew {
			return nil
		}
	}
	body, err := f.writeIndex(snap)
	if err != nil {
		f.cacheErr = err
		return nil
	}
	return body
}

// compact gives f, after a listing, the form of an adopted index (adopt),
// from body, the index it just wrote: the snapshot's names then lie in
// the index's text, and the listing's strings and the maps of names and
// UIDs are garbage (about 20 MB for 100,000 messages, twice that in a
// peak of Go's heap). The maps are built again only when something needs
// them (load), which a session reading and searching its messages does
// not. snap is kept if the index does not give it back.
func (f *Folder) compact(body []byte, snap Snapshot) Snapshot {
	x, err := parseIndexBody(unsafe.String(unsafe.SliceData(body), len(body)))
	if err != nil || !slices.Equal(x.msgs, snap.Msgs) {
		return snap // the next process would not adopt it either
	}
	f.adopt(x)
	snap.Msgs = f.lazy.msgs
	return snap
}

// CacheErr returns the last failure to write one of the folder's cache
// files (the index, the header cache), for the log; the folder works
// without them.
func (f *Folder) CacheErr() error { return f.cacheErr }

// writeIndex records f's listing and UID list, and snap's summary, and
// returns what follows the file's first line. The caller checked that the
// listing may be kept (settled stamps, nothing in new/, all numbered, snap
// made of it).
func (f *Folder) writeIndex(snap Snapshot) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(128 + len(f.ul.header) + len(f.ul.order)*(len(f.ul.order[0].base)+24))
	b.WriteString(f.indexHead(snap.Summary()))
	headLen := b.Len()
	var num [12]byte
	// numberFirst's (first.go): every line its own base, in the order
	// listed, without the map of UIDs. Otherwise dups must be known.
	ordered := len(f.ordered) == len(f.ul.order)
	if !ordered {
		f.ul.index()
	}
	for i, e := range f.ul.order {
		b.Write(strconv.AppendUint(num[:0], uint64(e.uid), 10))
		b.WriteByte(' ')
		// Without a base listed twice, each line is its base's (a lookup
		// fewer per message).
		if ordered {
			b.WriteString(f.ordered[i])
		} else if rel, ok := f.names[e.base]; ok && (!f.ul.dups || f.ul.uidOf(e.base) == e.uid) {
			b.WriteString(rel)
		} else {
			b.WriteString(e.base)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), f.writeIndexBody(b.Bytes(), headLen)
}

// indexHead is the index's head: its S, U and N lines (sum) and the UID
// list's first line.
func (f *Folder) indexHead(sum Summary) string {
	return fmt.Sprintf("S %s %s %d %d\nU %d %d\nN %d %d %d %d %d %d %d\n%s",
		f.stamps[0], f.stamps[1], f.scanned.UnixNano(), f.seenNext, f.ul.ino, f.ul.offset,
		sum.Messages, sum.FirstUnseen, sum.Validity, sum.Next, sum.Unseen, sum.Deleted, sum.Size, f.ul.header)
}

// writeIndexBody writes an index whose text after the first line is
// body, of which the head is the first headLen bytes.
func (f *Folder) writeIndexBody(body []byte, headLen int) error {
	first := fmt.Sprintf("%s %08x %d %08x %d\n", indexMagic, crc32.Checksum(body, castagnoli), len(body),
		crc32.Checksum(body[:headLen], castagnoli), headLen)
	return writeCache(filepath.Join(f.Dir, IndexName), []byte(first), body)
}

func (st dirStamp) String() string {
	return fmt.Sprintf("%d %d %d %d", st.mtime, st.ctime, st.ino, st.size)
}

// writeCache replaces path with head and body through a temporary file and
// a rename (readers see the old file or the new), without fsync: what it
// writes is a cache that carries its own checksum.
func writeCache(path string, head, body []byte) error {
	return writeCacheFrom(path, func(w io.Writer) error {
		_, err := w.Write(head)
		if err == nil {
			_, err = w.Write(body) // not appended to head: a 7 MB copy
		}
		return err
	})
}

// writeCacheFrom is writeCache for a file that write produces as it goes
// (a header cache rewrite: tens of megabytes not held in memory).
func writeCacheFrom(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp." + unique()
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	err = write(fh)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cache %s: %w", path, err)
	}
	removeStaleTemps(path)
	return nil
}

// staleTemp is the age past which a temporary cache file is a crashed
// writer's: a write takes milliseconds.
const staleTemp = time.Hour

// removeStaleTemps removes the temporary files of path that writers which
// died left behind (a fresh one may be another process's write).
func removeStaleTemps(path string) {
	temps, err := filepath.Glob(path + ".tmp.*")
	if err != nil {
		return
	}
	for _, t := range temps {
		if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) > staleTemp {
			_ = os.Remove(t) // best effort: the next write tries again
		}
	}
}

// adoptIndex gives a Folder that has not listed yet the listing of the
// index file, if new/ and cur/ still have its stamps. A missing, damaged
// or stale index is ignored (the caller lists, and rewrites it).
//
// The listing is adopted as read, in UID order, without the maps of base
// names (f.names, the UID list's uids): a new process's SELECT needs only
// the snapshot, which lazySnapshot makes from these arrays. Building the
// two maps of 100,000 names was most of a new process's SELECT; load
// builds them at the first need (a message read, a flag change, a sync
// that must compare listings).
func (f *Folder) adoptIndex() bool {
	xf, err := openIndex(filepath.Join(f.Dir, IndexName))
	if err != nil {
		return false
	}
	defer xf.close()
	for i, sub := range []string{"new", "cur"} {
		st, err := statDir(filepath.Join(f.Dir, sub))
		if err != nil || st != xf.head.stamps[i] {
			return false
		}
	}
	x, err := xf.read()
	if err != nil {
		return false
	}
	f.adopt(x)
	return true
}

// adopt makes x f's listing, lazily (see adoptIndex).
func (f *Folder) adopt(x *index) {
	f.stamps, f.scanned, f.seenNext = x.stamps, x.scanned, x.seenNext
	f.names, f.namesShared = nil, false
	f.ul = x.ul
	f.lazy = &lazyListing{body: x.body, msgs: slices.Clip(x.msgs), live: x.live, gen: x.ul.gen}
}

// lazyListing is an adopted index whose maps are not built yet. body is
// the index's lines, "<uid> cur/NAME" for a listed file; the names and
// bases of order and msgs are parts of it. A live base is at its first
// line (the writer writes a name only there), so the snapshot is the live
// lines in order.
type lazyListing struct {
	body string
	msgs []Message // the snapshot: the live lines, made as they were parsed
	live int       // lines with a file
	gen  uint64    // the UID list's gen when adopted
}

// rel returns the file ("cur/NAME") of base in the adopted listing,
// without its maps, when base is one of the listing's own strings (the
// Base of a Message of its snapshot, which is part of the line that names
// the file): it is found by where it lies in body. For any other string it
// reports false, and the caller looks in the maps.
func (z *lazyListing) rel(base string) (string, bool) {
	if base == "" || len(z.body) < 4 {
		return "", false
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(z.body)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(base)))
	if p < start+4 || p+uintptr(len(base)) > start+uintptr(len(z.body)) {
		return "", false
	}
	off := int(p - start)
	line := z.body[off:]
	if z.body[off-4:off] != "cur/" {
		return "", false
	}
	if nl := strings.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	if b, _ := splitName(line); b != base {
		return "", false
	}
	return z.body[off-4 : off+len(line)], true
}

// relOf returns the file of base in the listing: "cur/NAME" or "new/NAME".
func (f *Folder) relOf(base string) (string, bool) {
	if f.lazy != nil {
		if rel, ok := f.lazy.rel(base); ok {
			return rel, true
		}
	}
	f.load()
	rel, ok := f.names[base]
	return rel, ok
}

// listed reports whether f has a listing, built or not.
func (f *Folder) listed() bool { return f.names != nil || f.lazy != nil }

// load builds the maps of an adopted index, before their first use.
func (f *Folder) load() {
	z := f.lazy
	if z == nil {
		return
	}
	// The body was checked when adopted (entry): each line is "<uid> <rel>".
	names := make(map[string]string, z.live)
	for text := z.body; len(text) > 0; {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		_, rel, _ := strings.Cut(line, " ")
		name, live := strings.CutPrefix(rel, "cur/")
		if !live {
			continue
		}
		if base, _ := splitName(name); names[base] == "" {
			names[base] = rel
		}
	}
	f.names, f.namesShared, f.lazy = names, false, nil
	f.ul.index()
}

// lazySnapshot is snapshot for an adopted index not loaded yet, while the
// UID list read with it is unchanged.
// Its messages are shared, read-only, by every snapshot made of it.
func (f *Folder) lazySnapshot() Snapshot {
	return Snapshot{Validity: f.ul.validity, Next: f.ul.next, Msgs: f.lazy.msgs}
}

// index is a parsed index file: the UID list's lines in order (ul.order,
// without its map) and beside each its listed file, or "".
type index struct {
	stamps   [2]dirStamp
	scanned  time.Time
	seenNext uint32
	sum      Summary
	ul       uidList
	body     string    // the lines after the head
	msgs     []Message // the live lines, in order: the snapshot
	live     int
	lines    int    // lines of the body
	last     uint32 // the UID of the last line parsed
}

// indexFile is an open index file whose first line and head were read and
// checked; read reads the rest from the same file, which is never written
// in place (writeCache renames), so it is the one the head describes.
type indexFile struct {
	fh        *os.File
	head      *index // the head's lines parsed, no entries
	start     int64  // where the body begins
	sum, size uint32 // of the body
	headSize  int
}

// maxIndexHead bounds the head (four short lines).
const maxIndexHead = 4096

// parseIndexHead parses the first line, without its newline.
func parseIndexHead(line string) (sum uint32, size int, headSum uint32, headSize int, err error) {
	rest, ok := strings.CutPrefix(line, indexMagic+" ")
	if !ok {
		return 0, 0, 0, 0, errBadIndex
	}
	if _, err := fmt.Sscanf(rest, "%x %d %x %d", &sum, &size, &headSum, &headSize); err != nil ||
		size < 0 || headSize <= 0 || headSize > min(size, maxIndexHead) {
		return 0, 0, 0, 0, errBadIndex
	}
	return sum, size, headSum, headSize, nil
}

// openIndex opens the index file and reads and checks its head.
func openIndex(path string) (*indexFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	xf, err := readIndexHead(fh)
	if err != nil {
		fh.Close()
		return nil, err
	}
	xf.fh = fh
	return xf, nil
}

// readIndexHead reads the first line and the head; the caller sets fh.
func readIndexHead(fh io.ReaderAt) (*indexFile, error) {
	var buf [128 + maxIndexHead]byte
	n, err := fh.ReadAt(buf[:], 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	nl := bytes.IndexByte(buf[:n], '\n')
	if nl < 0 {
		return nil, errBadIndex
	}
	sum, size, headSum, headSize, err := parseIndexHead(string(buf[:nl]))
	if err != nil {
		return nil, err
	}
	head := buf[nl+1 : min(n, nl+1+headSize)]
	if len(head) != headSize || crc32.Checksum(head, castagnoli) != headSum {
		return nil, errBadIndex
	}
	x, rest, err := parseIndexHeadLines(string(head))
	if err != nil || rest != "" {
		return nil, errBadIndex
	}
	return &indexFile{head: x, start: int64(nl + 1), sum: sum, size: uint32(size), headSize: headSize}, nil
}

func (xf *indexFile) close() { xf.fh.Close() }

// read reads and checks the body. It is read in one piece into the one
// string that the parsed names slice: a 100,000-message index is 7 MB,
// and every copy of it costs a new process its page faults.
func (xf *indexFile) read() (*index, error) {
	fi, err := xf.fh.Stat()
	if err != nil {
		return nil, err
	}
	size := int64(xf.size)
	if fi.Size() != xf.start+size {
		return nil, errBadIndex // also bounds what is read below
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(xf.fh, xf.start, size), buf); err != nil {
		return nil, err
	}
	if crc32.Checksum(buf, castagnoli) != xf.sum {
		return nil, errBadIndex
	}
	// The names slice this text for as long as the listing lives; buf is
	// never written again, so it is the string's without a copy.
	return parseIndexBody(unsafe.String(unsafe.SliceData(buf), len(buf)))
}

// parseIndexHeadLines parses the S, U and N lines and the UID list's
// first line; rest is the text after them.
func parseIndexHeadLines(text string) (x *index, rest string, err error) {
	var lines [4]string
	for i := range lines {
		nl := strings.IndexByte(text, '\n')
		if nl < 0 {
			return nil, "", errBadIndex
		}
		lines[i], text = text[:nl], text[nl+1:]
	}
	x = &index{}
	var scanned int64
	var st [2]dirStamp
	if _, err := fmt.Sscanf(lines[0], "S %d %d %d %d %d %d %d %d %d %d", &st[0].mtime, &st[0].ctime, &st[0].ino, &st[0].size,
		&st[1].mtime, &st[1].ctime, &st[1].ino, &st[1].size, &scanned, &x.seenNext); err != nil {
		return nil, "", errBadIndex
	}
	x.stamps, x.scanned = st, time.Unix(0, scanned)
	if _, err := fmt.Sscanf(lines[1], "U %d %d", &x.ul.ino, &x.ul.offset); err != nil {
		return nil, "", errBadIndex
	}
	sum := &x.sum
	if _, err := fmt.Sscanf(lines[2], "N %d %d %d %d %d %d %d", &sum.Messages, &sum.FirstUnseen, &sum.Validity, &sum.Next,
		&sum.Unseen, &sum.Deleted, &sum.Size); err != nil ||
		sum.Messages < 0 || sum.FirstUnseen < 0 || sum.FirstUnseen > sum.Messages || sum.Unseen < 0 ||
		sum.Unseen > sum.Messages || sum.Deleted < 0 || sum.Deleted > sum.Messages || sum.Size < -1 {
		return nil, "", errBadIndex
	}
	if err := x.ul.parseHeader(lines[3]); err != nil {
		return nil, "", errBadIndex
	}
	x.ul.uids = nil // built by index() when needed
	return x, text, nil
}

// parseIndexBody parses the checked body; the names slice text. The
// summary must agree with the entries.
func parseIndexBody(text string) (*index, error) {
	x, text, err := parseIndexHeadLines(text)
	if err != nil {
		return nil, err
	}
	n := strings.Count(text, "\n")
	x.lines = n
	x.body = text
	x.msgs = make([]Message, 0, min(x.sum.Messages, n)) // checked against the lines below
	for len(text) > 0 {
		nl := strings.IndexByte(text, '\n')
		if nl < 0 {
			return nil, errBadIndex
		}
		if err := x.entry(text[:nl]); err != nil {
			return nil, err
		}
		text = text[nl+1:]
	}
	x.ul.gen = 1
	if x.ul.order == nil {
		x.ul.implicit = slices.Clip(x.msgs) // every line names a file
	}
	if x.sum.Messages != x.live || x.sum.Validity != x.ul.validity || x.sum.Next != x.ul.next {
		return nil, errBadIndex
	}
	return x, nil
}

// entry parses "<uid> <base>" or "<uid> cur/<name>", with the rules of
// the UID list's own lines (parseEntry). A base listed twice keeps its
// first UID, which the UID list's index() sees; the writer gives a file
// only to that first line.
func (x *index) entry(l string) error {
	sp := strings.IndexByte(l, ' ')
	if sp <= 0 {
		return errBadIndex
	}
	uid, ok := parseUID(l[:sp])
	rel := l[sp+1:]
	name, live := strings.CutPrefix(rel, "cur/")
	base, flags := splitName(name)
	if !ok || base == "" || strings.IndexByte(base, '/') >= 0 || strings.IndexByte(base, ' ') >= 0 {
		return errBadIndex
	}
	ul := &x.ul
	if uid <= x.last {
		return errBadIndex
	}
	x.last = uid
	ul.next = max(ul.next, uid+1)
	if live {
		x.live++
		x.msgs = append(x.msgs, Message{UID: uid, Base: base, Flags: flags})
	} else if ul.order == nil {
		// The first line without a file: the UID list's entries are
		// no longer the snapshot's (uidList.implicit), and are kept.
		ul.order = make([]entry, len(x.msgs), x.lines)
		for i, m := range x.msgs {
			ul.order[i] = entry{m.UID, m.Base}
		}
	}
	if ul.order != nil {
		ul.order = append(ul.order, entry{uid, base})
	}
	return nil
}
