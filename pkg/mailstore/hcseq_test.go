package mailstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
	if hc.inTurn != len(snap.Msgs)-2 || hc.overridden {
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
	if err := file.refresh(s.Root); err != nil {
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
	if !hc.overridden || !bytes.Contains(hdrs[1], []byte("the later record")) {
		t.Fatalf("%s, overridden %v: %q", hc, hc.overridden, hdrs[1])
	}
}
