package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
)

// learnStore makes a folder of n messages whose headers are kept as
// fields (the Received line makes them too large to be kept whole),
// numbered and settled.
func learnStore(t *testing.T, n int) (*Store, Snapshot) {
	t.Helper()
	s := newStore(t)
	received := "Received: from relay.example.net (relay.example.net [192.0.2.7])\n" +
		"\tby mx.example.test with ESMTPS id 4F2A; Tue, 3 Feb 2026 10:00:00 +0000\n"
	for i := range n {
		msg := fmt.Sprintf("%sFrom: a%d@example.test\nSubject: report %d\n\n", received, i, i)
		if _, err := maildir.Deliver(s.Root, []byte(msg), strings.NewReader("body\n")); err != nil {
			t.Fatal(err)
		}
	}
	snap, _, err := inbox(t, s).Sync(true)
	if err != nil || len(snap.Msgs) != n {
		t.Fatalf("%d messages, %v", len(snap.Msgs), err)
	}
	time.Sleep(1100 * time.Millisecond) // settled: batches trust the listing
	return s, snap
}

// TestLearnAllocs: a batch that reuses buffers (a search) learns the
// header of each message file into buffers the cache keeps (the header
// returned, what its entry keeps, the record), without making the file's
// path, and its slots do not grow by doubling: one object a message (the
// name as openat takes it), five before. Every header is learned: a new
// Folder finds them all in the file.
func TestLearnAllocs(t *testing.T) {
	s, snap := learnStore(t, 300)
	f := inbox(t, s)
	if _, _, err := f.Sync(false); err != nil {
		t.Fatal(err)
	}
	end := f.HeaderBatch()
	f.ReuseHeaderBuffers()
	i, bad := 0, 0
	allocs := testing.AllocsPerRun(len(snap.Msgs)-1, func() {
		h, _, err := f.ReadHeaderFields(snap.Msgs[i].Base, []string{"Subject"})
		if err != nil || !bytes.Contains(h, []byte("\r\nSubject: report ")) {
			bad++
		}
		i++
	})
	if err := end(); err != nil || bad > 0 || i != len(snap.Msgs) {
		t.Fatalf("%d of %d headers read wrong, %v", bad, i, err)
	}
	if allocs > 1 { // AllocsPerRun rounds down
		t.Errorf("%.2f allocations a message learned", allocs)
	}
	g := inbox(t, s)
	if _, _, err := g.Sync(false); err != nil {
		t.Fatal(err)
	}
	g.hc = newHeaderCache()
	if err := g.hc.refresh(g.Dir, 0); err != nil || g.hc.records != len(snap.Msgs) {
		t.Fatalf("%s in the file, %v", g.hc, err)
	}
}

// TestLearnRenamed: a file renamed since the listing (its flags changed by
// another session) is found and its header read; a file removed is
// ErrGone.
func TestLearnRenamed(t *testing.T) {
	s, snap := learnStore(t, 3)
	f := inbox(t, s)
	if _, _, err := f.Sync(false); err != nil {
		t.Fatal(err)
	}
	rel, ok := f.relOf(snap.Msgs[0].Base)
	gone, ok2 := f.relOf(snap.Msgs[1].Base)
	if !ok || !ok2 {
		t.Fatal("not listed")
	}
	if err := os.Rename(filepath.Join(f.Dir, rel), filepath.Join(f.Dir, "cur", snap.Msgs[0].Base+":2,FS")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.Dir, gone)); err != nil {
		t.Fatal(err)
	}
	end := f.HeaderBatch()
	defer end()
	h, _, err := f.ReadHeaderFields(snap.Msgs[0].Base, []string{"Subject"})
	if err != nil || !bytes.Contains(h, []byte("\r\nSubject: report 0\r\n")) {
		t.Fatalf("renamed: %q, %v", h, err)
	}
	if _, _, err := f.ReadHeaderFields(snap.Msgs[1].Base, []string{"Subject"}); !errors.Is(err, ErrGone) {
		t.Fatalf("removed: %v", err)
	}
}

// TestLearnLean: a batch that reads many message files (a first search)
// holds lean until its end; one served from the cache, and one that reads
// a few new messages, leave the GC target alone.
func TestLearnLean(t *testing.T) {
	const admin = 150 // as if GOGC=150
	old := debug.SetGCPercent(admin)
	defer debug.SetGCPercent(old)
	target := func() int {
		p := debug.SetGCPercent(admin)
		debug.SetGCPercent(p)
		return p
	}
	s, _ := learnStore(t, hcManyReads+10)
	batch := func() (during int) {
		f := inbox(t, s)
		snap, _, err := f.Sync(true)
		if err != nil {
			t.Fatal(err)
		}
		end := f.HeaderBatch()
		f.ReuseHeaderBuffers()
		for _, m := range snap.Msgs {
			if _, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"}); err != nil {
				t.Fatal(err)
			}
		}
		during = target()
		if err := end(); err != nil {
			t.Fatal(err)
		}
		if after := target(); after != admin {
			t.Fatalf("GC target after a batch: %d, want %d", after, admin)
		}
		return during
	}
	if got := batch(); got != leanPercent {
		t.Fatalf("GC target while a batch reads every file: %d, want %d", got, leanPercent)
	}
	if got := batch(); got != admin {
		t.Fatalf("GC target while a batch is served from the cache: %d", got)
	}
	deliver(t, s.Root, 5)
	if got := batch(); got != admin {
		t.Fatalf("GC target while a batch reads 5 new messages: %d", got)
	}
}
