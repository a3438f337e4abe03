package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// peekedInbox is a new process's Folder that peeked at the index; it
// fails the test unless the peek was taken, without a listing.
func peekedInbox(t *testing.T, s *Store) (*Folder, Summary) {
	t.Helper()
	forgetListings()
	f := inbox(t, s)
	sum, ok := f.Peek()
	if !ok || f.listed() {
		t.Fatalf("no peek at a current index: %v, listed %v", ok, f.listed())
	}
	return f, sum
}

// TestPeek: the summary of a current index is the snapshot's, and the
// snapshot given later is the one summarized even after other processes
// changed the folder; the changes then come with the next Sync.
func TestPeek(t *testing.T) {
	s, first, _ := settledInbox(t, 5)
	f := inbox(t, s)
	for _, m := range first.Msgs[:2] {
		if _, err := f.SetFlags(m.Base, func(o Flags) Flags { return o.With("S", "") }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.SetFlags(first.Msgs[4].Base, func(o Flags) Flags { return o.With("T", "") }); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	want, _, err := inbox(t, s).Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	f, sum := peekedInbox(t, s)
	if exp := (Summary{Messages: 5, FirstUnseen: 3, Unseen: 3, Deleted: 1, Size: 5 * 20, Validity: want.Validity, Next: want.Next}); sum != exp {
		t.Fatalf("summary %+v, want %+v", sum, exp)
	}
	if !f.Unchanged() {
		t.Fatal("Unchanged is false for an untouched folder")
	}

	// Another process expunges one message and a delivery arrives.
	other := inbox(t, s)
	if _, _, err := other.Sync(true); err != nil {
		t.Fatal(err)
	}
	if err := other.Expunge([]string{want.Msgs[0].Base}); err != nil {
		t.Fatal(err)
	}
	deliver(t, s.Root, 1)
	if f.Unchanged() {
		t.Fatal("Unchanged is true after an expunge and a delivery")
	}
	got, err := f.PeekedSnapshot()
	if err != nil || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) || got.Next != want.Next {
		t.Fatalf("peeked snapshot %+v, %v; want %+v", got.Msgs, err, want.Msgs)
	}
	now, _, err := f.Sync(true)
	if err != nil || len(now.Msgs) != 5 || now.Msgs[0].UID != want.Msgs[1].UID || now.Msgs[4].UID != want.Next || now.Gen == got.Gen {
		t.Fatalf("the Sync after: %+v, %v", now, err)
	}
	forgetListings()
	if _, ok := inbox(t, s).Peek(); ok {
		t.Fatal("a stale index was peeked")
	}
}

// TestPeekSyncFirst: a Sync that comes before PeekedSnapshot starts from
// the peeked listing, and a folder left without either releases the file.
func TestPeekSyncFirst(t *testing.T) {
	s, want, _ := settledInbox(t, 4)
	f, _ := peekedInbox(t, s)
	got, _, err := f.Sync(true)
	if err != nil || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) || f.peek != nil || f.lazy == nil {
		t.Fatalf("Sync after Peek: %+v, %v, peek %v, lazy %v", got, err, f.peek != nil, f.lazy != nil)
	}
	if _, err := f.PeekedSnapshot(); !errors.Is(err, ErrIndexChanged) {
		t.Fatalf("a second PeekedSnapshot: %v", err)
	}
	f, _ = peekedInbox(t, s)
	f.ClosePeek()
	if f.peek != nil || f.Unchanged() {
		t.Fatal("ClosePeek left the peek")
	}
}

// TestPeekRefused: no peek when the UID list is not the one the index
// read (a line appended, a rewrite), nor at a damaged head; a body
// damaged after the peek is ErrIndexChanged, not a wrong snapshot, unless
// the process kept the same listing.
func TestPeekRefused(t *testing.T) {
	s, want, _ := settledInbox(t, 3)
	ul := filepath.Join(s.Root, UIDListName)
	orig, err := os.ReadFile(ul)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"appended":  string(orig) + "99 1700000000.M99P1Q1.h\n",
		"rewritten": "mailsrv-uidlist 1 V1 N9 Gother\n" + string(orig[len(want.Msgs[0].Base):]),
	} {
		if err := os.WriteFile(ul, []byte(data), 0600); err != nil {
			t.Fatal(err)
		}
		forgetListings()
		if _, ok := inbox(t, s).Peek(); ok {
			t.Errorf("%s UID list: peeked", name)
		}
	}
	if err := os.WriteFile(ul, orig, 0600); err != nil {
		t.Fatal(err)
	}
	// WriteFile kept the inode: the UID list is the index's again.
	f, _ := peekedInbox(t, s)
	idx := filepath.Join(s.Root, IndexName)
	damage(t, idx, -3)
	if _, err := f.PeekedSnapshot(); !errors.Is(err, ErrIndexChanged) {
		t.Fatalf("damaged body: %v", err)
	}
	if snap, _, err := f.Sync(true); err != nil || fmt.Sprint(snap.Msgs) != fmt.Sprint(want.Msgs) {
		t.Fatalf("the Sync after a damaged index: %+v, %v", snap, err)
	}
	data, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	damage(t, idx, int64(bytes.IndexByte(data, '\n')+5)) // in the S line
	forgetListings()
	if _, ok := inbox(t, s).Peek(); ok {
		t.Fatal("a damaged head was peeked")
	}

	// In one process, the kept listing of the same stamps serves.
	settle(t, s)
	if _, _, err := inbox(t, s).Sync(true); err != nil {
		t.Fatal(err)
	}
	f = inbox(t, s)
	if _, ok := f.Peek(); !ok {
		t.Fatal("no peek")
	}
	damage(t, idx, -3)
	if got, err := f.PeekedSnapshot(); err != nil || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) {
		t.Fatalf("kept listing: %+v, %v", got, err)
	}
}

// damage flips a byte of the file in place, at off (from the end if
// negative), as a disk fault would.
func damage(t *testing.T, path string, off int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if off < 0 {
		fi, err := fh.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += fi.Size()
	}
	var b [1]byte
	if _, err := fh.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := fh.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func TestNameSize(t *testing.T) {
	for base, want := range map[string]int64{
		"1700000000.M1P2Q3.host,S=100,W=103": 103,
		"1700000000.M1P2Q3.host,W=7,S=5":     7,
		"1700000000.M1P2Q3.host,W=x,W=9":     9,
		"1700000000.M1P2Q3.host,S=100":       -1,
		"W=5":                                -1, // a field follows a comma
		"a,W=-3":                             -1,
		"a,W=":                               -1,
	} {
		n, ok := nameSize(base)
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("nameSize(%q) = %d, want %d", base, n, want)
		}
	}
}
