package mailstore

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// forgetListings empties the in-process listing cache: the next Folder is
// as in a new process.
func forgetListings() {
	listings.Lock()
	clear(listings.m)
	listings.total = 0
	listings.Unlock()
}

// settledInbox delivers n messages, numbers them, waits for the stamps to
// settle, and lists once more (which writes the index); it returns the
// snapshot and the listing's start.
func settledInbox(t *testing.T, n int) (*Store, Snapshot, time.Time) {
	t.Helper()
	s := newStore(t)
	deliver(t, s.Root, n)
	if _, _, err := inbox(t, s).Sync(true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	forgetListings()
	f := inbox(t, s)
	snap, _, err := f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root, IndexName)); err != nil {
		t.Fatalf("no index after a settled listing: %v (%v)", err, f.CacheErr())
	}
	return s, snap, f.scanned
}

// newProcessSync is a new process's first Sync: adopted reports whether
// it took the index instead of listing.
func newProcessSync(t *testing.T, s *Store, written time.Time) (snap Snapshot, adopted bool) {
	t.Helper()
	forgetListings()
	f := inbox(t, s)
	snap, _, err := f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	return snap, f.scanned.Equal(written)
}

// TestFolderIndex: a new process takes the index while new/ and cur/ are
// unchanged, and lists (and rewrites it) when the index is missing,
// truncated, garbage, or stale.
func TestFolderIndex(t *testing.T) {
	s, want, written := settledInbox(t, 20)
	path := filepath.Join(s.Root, IndexName)
	got, adopted := newProcessSync(t, s, written)
	if !adopted || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) || got.Validity != want.Validity || got.Next != want.Next {
		t.Fatalf("adopted %v: %+v, want %+v", adopted, got, want)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string]func() error{
		"deleted":   func() error { return os.Remove(path) },
		"truncated": func() error { return os.Truncate(path, int64(len(good)/2)) },
		"garbage":   func() error { return os.WriteFile(path, bytes.Repeat([]byte("\x00garbage\n"), len(good)/8), 0600) },
		"bad checksum": func() error {
			bad := bytes.Clone(good)
			bad[len(bad)-3] ^= 1
			return os.WriteFile(path, bad, 0600)
		},
		"empty":  func() error { return os.WriteFile(path, nil, 0600) },
		"longer": func() error { return os.WriteFile(path, append(bytes.Clone(good), "1 x\n"...), 0600) },
		"huge size": func() error {
			return os.WriteFile(path, fmt.Appendf(nil, "%s 00000000 99999999999999 00000000 10\n", indexMagic), 0600)
		},
	}
	for name, do := range damage {
		if err := do(); err != nil {
			t.Fatal(err)
		}
		got, adopted := newProcessSync(t, s, written)
		if adopted || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) {
			t.Fatalf("%s index: adopted %v, %+v", name, adopted, got)
		}
		// The listing just taken was settled: it rewrote the index.
		if _, err := parseIndexFile(path); err != nil {
			t.Fatalf("%s index not rebuilt: %v", name, err)
		}
		forgetListings()
		f := inbox(t, s)
		if _, _, err := f.Sync(false); err != nil {
			t.Fatal(err)
		}
		written = f.scanned
		if _, adopted := newProcessSync(t, s, written); !adopted {
			t.Fatalf("%s: the rebuilt index is not taken", name)
		}
	}
}

func parseIndexFile(path string) (*index, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseIndex(data)
}

// TestFolderIndexStale: a change by another process (a flag change, an
// expunge, a delivery, a lost UID list) is seen by the next process, never
// answered from the index.
func TestFolderIndexStale(t *testing.T) {
	s, want, written := settledInbox(t, 5)
	other := inbox(t, s)
	if _, _, err := other.Sync(true); err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetFlags(want.Msgs[0].Base, func(o Flags) Flags { return o.With("F", "") }); err != nil {
		t.Fatal(err)
	}
	got, adopted := newProcessSync(t, s, written)
	if adopted || got.Msgs[0].Flags != "F" {
		t.Fatalf("after a flag change: adopted %v, flags %q", adopted, got.Msgs[0].Flags)
	}
	if err := other.Expunge([]string{want.Msgs[1].Base}); err != nil {
		t.Fatal(err)
	}
	if got, adopted = newProcessSync(t, s, written); adopted || len(got.Msgs) != 4 {
		t.Fatalf("after an expunge: adopted %v, %d messages", adopted, len(got.Msgs))
	}
	deliver(t, s.Root, 1)
	if got, adopted = newProcessSync(t, s, written); adopted || len(got.Msgs) != 5 || got.Msgs[4].UID != 6 {
		t.Fatalf("after a delivery: adopted %v, %+v", adopted, got.Msgs)
	}

	// The directories unchanged, the UID list lost: the index's listing
	// stands, but the numbers are the new list's.
	s, want, written = settledInbox(t, 3)
	if err := os.Remove(filepath.Join(s.Root, UIDListName)); err != nil {
		t.Fatal(err)
	}
	got, _ = newProcessSync(t, s, written)
	if got.Validity <= want.Validity || len(got.Msgs) != 3 {
		t.Fatalf("after the UID list was lost: validity %d (was %d), %d messages", got.Validity, want.Validity, len(got.Msgs))
	}
}

// TestStaleCacheTemps: a temporary file a dead writer left is removed by
// the next write of that cache; a fresh one (a write under way) is not.
func TestStaleCacheTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, IndexName)
	old, fresh := path+".tmp.deadhost.1.aa", path+".tmp.livehost.2.bb"
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if err := writeCache(path, []byte("head\n"), []byte("body")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "head\nbody" {
		t.Errorf("%q, %v", data, err)
	}
}

// parseIndex is openIndex and read on bytes in memory (tests and the
// fuzz target).
func parseIndex(data []byte) (*index, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, errBadIndex
	}
	sum, size, headSum, headSize, err := parseIndexHead(string(data[:nl]))
	if err != nil {
		return nil, err
	}
	body := data[nl+1:]
	if len(body) != size || crc32.Checksum(body, castagnoli) != sum || crc32.Checksum(body[:headSize], castagnoli) != headSum {
		return nil, errBadIndex
	}
	return parseIndexBody(string(body))
}
