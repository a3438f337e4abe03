package mailstore

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHeaderCacheInTurn: a warm batch reading in UID order (as a search
// does, reusing its buffers) finds the records in turn, with the answers
// of the files; a base with a later
// record is answered from that one, also when its earlier record follows
// the one just used.
func TestHeaderCacheInTurn(t *testing.T) {
	s, snap := hcStore(t)
	checkHeaders(t, s, snap) // writes the cache, in UID order
	// One read per message, in order, as a search does.
	read := func() (*headerCache, [][]byte) {
		f := inbox(t, s)
		if _, _, err := f.Sync(false); err != nil {
			t.Fatal(err)
		}
		end := f.HeaderBatch()
		f.ReuseHeaderBuffers()
		var hdrs [][]byte
		for _, m := range snap.Msgs {
			h, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"})
			if err != nil {
				t.Fatal(err)
			}
			hdrs = append(hdrs, bytes.Clone(h)) // valid until the next read
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
		return f.hc, hdrs
	}
	hc, hdrs := read()
	// Each cached message but the first (found through its slot)
	// follows the one read before it; one of hcMessages is not cached.
	if hc.inTurn != len(snap.Msgs)-2 || len(hc.overridden) > 0 {
		t.Fatalf("%s, overridden %v, for %d messages", hc, hc.overridden, len(snap.Msgs))
	}
	for i, m := range snap.Msgs {
		want, _, err := inbox(t, s).ReadHeader(m.Base)
		if err != nil {
			t.Fatal(err)
		}
		if fieldLines(hdrs[i], []string{"Subject"}) != fieldLines(want, []string{"Subject"}) {
			t.Fatalf("UID %d: %q, file %q", m.UID, hdrs[i], want)
		}
	}

	// A later record for the second message (what the first search
	// would have found through its slot) wins over the one in turn.
	second := snap.Msgs[1].Base
	file := newHeaderCache()
	if err := file.refresh(s.Root, 0); err != nil {
		t.Fatal(err)
	}
	_, e, _, ok := file.lookup(second)
	if err := file.fh.Close(); err != nil || !ok {
		t.Fatalf("no record for %s: %v", second, err)
	}
	path := filepath.Join(s.Root, HeaderCacheName)
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(appendRecord(nil, second, e, []byte("Subject: the later record\r\n\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	hc, hdrs = read()
	// The others are still found in turn: the first, the second through
	// its slot, the one after it.
	if !hc.isOverridden(second) || hc.inTurn != len(snap.Msgs)-4 || !bytes.Contains(hdrs[1], []byte("the later record")) {
		t.Fatalf("%s, overridden %v: %q", hc, hc.overridden, hdrs[1])
	}
}

// TestAppendRecordFormat: records are written byte for byte as the fmt
// formulas of the format (hcache.go) would write them.
func TestAppendRecordFormat(t *testing.T) {
	for _, c := range []struct {
		base string
		e    hcEntry
		hdr  string
	}{
		{"1.M1P1Q1.host,S=10:2,S", hcEntry{ino: 1, size: 10, mtime: 1e18, whole: true}, "Subject: a\r\n\r\n"},
		{strings.Repeat("n", 250), hcEntry{ino: 1<<64 - 1, size: 1<<63 - 1, mtime: -5,
			stamp: dirStamp{mtime: 7, ctime: 8, ino: 9, size: 4096}, structure: []byte("(\"TEXT\")")}, ""},
		{"b", hcEntry{ino: 2, structure: []byte("(s)"), envelope: []byte("=(e)")}, "From: x\r\n\r\n"},
	} {
		whole := 0
		if c.e.whole {
			whole = 1
		}
		line := fmt.Sprintf("%s %d %d %d %d %s %d %d\n", c.base, c.e.ino, c.e.size, c.e.mtime, whole, c.e.stamp,
			len(c.e.structure), len(c.e.envelope))
		sum := crc32.Update(crc32.Checksum([]byte(line), castagnoli), castagnoli, []byte(c.hdr))
		sum = crc32.Update(sum, castagnoli, c.e.structure)
		sum = crc32.Update(sum, castagnoli, c.e.envelope)
		want := fmt.Sprintf("%08x %d\n", sum, len(line)+len(c.hdr)+len(c.e.structure)+len(c.e.envelope)) +
			line + c.hdr + string(c.e.structure) + string(c.e.envelope)
		if got := string(appendRecord([]byte("x"), c.base, c.e, []byte(c.hdr))); got != "x"+want {
			t.Fatalf("%q\nwant %q", got, want)
		}
	}
}

// TestHeaderCacheInTurnShared: places kept for the next sessions (imapd
// --listen) carry what they know of a base with two records, so that a
// session taking them answers from the later record too.
func TestHeaderCacheInTurnShared(t *testing.T) {
	const n = 1200 // past the least worth keeping
	s := newStore(t)
	for i := range n {
		name := fmt.Sprintf("%d.M%dP1Q%d.host,S=40:2,S", 1600000000+i, i, i)
		if err := os.WriteFile(filepath.Join(s.Root, "cur", name), fmt.Appendf(nil, "Subject: number %d\n\nbody\n", i), 0600); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // settled: records are used in turn
	snap, _, err := inbox(t, s).Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	twice := snap.Msgs[7]
	session := func() *Folder {
		t.Helper()
		f := inbox(t, s)
		if _, _, err := f.Sync(false); err != nil {
			t.Fatal(err)
		}
		end := f.HeaderBatch()
		f.ReuseHeaderBuffers()
		for _, m := range snap.Msgs {
			got, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"})
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("Subject: number %d\r\n\r\n", m.UID-1)
			if m.Base == twice.Base && f.hc.isOverridden(m.Base) {
				want = "Subject: the later record\r\n\r\n"
			}
			if string(got) != want {
				t.Fatalf("UID %d: %q, want %q (%s)", m.UID, got, want, f.hc)
			}
		}
		if err := end(); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := session(); f.hc.isOverridden(twice.Base) { // writes the cache
		t.Fatalf("overridden after the first session: %s", f.hc)
	}
	file := newHeaderCache()
	if err := file.refresh(s.Root, 0); err != nil {
		t.Fatal(err)
	}
	_, e, _, ok := file.lookup(twice.Base)
	if err := file.fh.Close(); err != nil || !ok {
		t.Fatalf("no record for %s: %v", twice.Base, err)
	}
	fh, err := os.OpenFile(filepath.Join(s.Root, HeaderCacheName), os.O_WRONLY|os.O_APPEND, 0600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(appendRecord(nil, twice.Base, e, []byte("Subject: the later record\r\n\r\n"))); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	if f := session(); !f.hc.isOverridden(twice.Base) || f.hc.inTurn != n-3 { // reads the file whole, keeps the places
		t.Fatalf("second session: %s, overridden %v", f.hc, f.hc.overridden)
	}
	if f := session(); f.hc.base == nil || !f.hc.isOverridden(twice.Base) || f.hc.inTurn != n-3 {
		t.Fatalf("third session: %s, base %v, overridden %v", f.hc, f.hc.base != nil, f.hc.overridden)
	}
}
