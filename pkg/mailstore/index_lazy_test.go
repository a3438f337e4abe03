package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lazyInbox is a new process's Folder that adopted the index without
// building its maps; it fails the test otherwise.
func lazyInbox(t *testing.T, s *Store) (*Folder, Snapshot) {
	t.Helper()
	forgetListings()
	f := inbox(t, s)
	snap, _, err := f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	if f.lazy == nil || f.names != nil || f.ul.uids != nil {
		t.Fatalf("the index was not adopted lazily: lazy %v, %d names", f.lazy != nil, len(f.names))
	}
	return f, snap
}

// TestFolderIndexLazy: a Folder that adopted the index without its maps
// answers a poll from it, and builds the maps for whatever needs them (a
// read, a flag change, an expunge, a delivery, a UID list another process
// appended to), with the results of a Folder that listed.
func TestFolderIndexLazy(t *testing.T) {
	s, want, _ := settledInbox(t, 6)
	f, got := lazyInbox(t, s)
	if fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) || got.Validity != want.Validity || got.Next != want.Next {
		t.Fatalf("lazy snapshot %+v, want %+v", got, want)
	}
	again, _, err := f.Sync(true)
	if err != nil || again.Gen != got.Gen || f.lazy == nil {
		t.Fatalf("a poll of an unchanged folder: gen %d (was %d), lazy %v, %v", again.Gen, got.Gen, f.lazy != nil, err)
	}

	// A read of a message of the snapshot finds its file in the index's
	// text; a name from elsewhere builds the maps.
	for i, m := range got.Msgs {
		if data, _, err := f.Read(m.Base); err != nil || string(data) != fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i) {
			t.Fatalf("read %q, %v", data, err)
		}
	}
	if f.lazy == nil || f.names != nil {
		t.Fatal("reading the snapshot's messages built the maps")
	}
	if data, _, err := f.Read(strings.Clone(want.Msgs[2].Base)); err != nil || string(data) != "Subject: 2\r\n\r\nbody\r\n" {
		t.Fatalf("read %q, %v", data, err)
	}
	if f.lazy != nil || len(f.names) != 6 || len(f.ul.uids) != 6 {
		t.Fatalf("after a read: lazy %v, %d names, %d uids", f.lazy != nil, len(f.names), len(f.ul.uids))
	}

	// A flag change, then an expunge, each in a fresh lazy Folder.
	f, _ = lazyInbox(t, s)
	if fl, err := f.SetFlags(want.Msgs[0].Base, func(o Flags) Flags { return o.With("F", "") }); err != nil || fl != "F" {
		t.Fatalf("set flags: %q, %v", fl, err)
	}
	snap, _, err := f.Sync(true)
	if err != nil || snap.Msgs[0].Flags != "F" || len(snap.Msgs) != 6 {
		t.Fatalf("after a flag change: %+v, %v", snap.Msgs, err)
	}
	settle(t, s)
	f, _ = lazyInbox(t, s)
	if err := f.Expunge([]string{want.Msgs[1].Base}); err != nil {
		t.Fatal(err)
	}
	if snap, _, err = f.Sync(true); err != nil || len(snap.Msgs) != 5 || snap.Msgs[1].UID != want.Msgs[2].UID {
		t.Fatalf("after an expunge: %+v, %v", snap.Msgs, err)
	}

	// A delivery: new/ changed, the folder lists and numbers it.
	settle(t, s)
	f, _ = lazyInbox(t, s)
	deliver(t, s.Root, 1)
	if snap, _, err = f.Sync(true); err != nil || len(snap.Msgs) != 6 || snap.Msgs[5].UID != want.Next {
		t.Fatalf("after a delivery: %+v, %v", snap.Msgs, err)
	}

	// Another process numbers a message (an APPEND) while this one holds
	// the index unloaded: the UID list grew, the maps are built from it.
	settle(t, s)
	f, _ = lazyInbox(t, s)
	other := inbox(t, s)
	uid, _, err := other.Append([]byte("Subject: appended\n\nx\n"), "S", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if snap, _, err = f.Sync(true); err != nil || len(snap.Msgs) != 7 || snap.Msgs[6].UID != uid || f.lazy != nil {
		t.Fatalf("after an append by another process: %+v, lazy %v, %v", snap.Msgs, f.lazy != nil, err)
	}
}

// settle waits for the folder's stamps to settle and lists it, which
// rewrites the index.
func settle(t *testing.T, s *Store) {
	t.Helper()
	time.Sleep(1100 * time.Millisecond)
	forgetListings()
	if _, _, err := inbox(t, s).Sync(true); err != nil {
		t.Fatal(err)
	}
}

// TestFolderIndexLazyKept: in one process (imapd --listen), the listing
// adopted from the index is kept unloaded for the next session, which
// takes it without reading the index; each session builds its own maps,
// and a change in one reaches neither the other nor the kept listing.
func TestFolderIndexLazyKept(t *testing.T) {
	s, want, _ := settledInbox(t, 4)
	a, _ := lazyInbox(t, s)
	b := inbox(t, s)
	snap, _, err := b.Sync(true)
	if err != nil || b.lazy != a.lazy || fmt.Sprint(snap.Msgs) != fmt.Sprint(want.Msgs) {
		t.Fatalf("the second session did not take the kept listing: %v, %+v", err, snap.Msgs)
	}
	if _, err := a.SetFlags(want.Msgs[0].Base, func(o Flags) Flags { return o.With("F", "") }); err != nil {
		t.Fatal(err)
	}
	if b.names != nil || b.lazy == nil {
		t.Fatal("a change in one session built the other's maps")
	}
	listings.Lock()
	kept := listings.m[s.Root]
	listings.Unlock()
	if kept == nil || kept.lazy == nil || kept.names != nil || !strings.Contains(kept.lazy.body, " cur/"+want.Msgs[0].Base+":2,\n") {
		t.Fatalf("the kept listing changed: %+v", kept)
	}
	if rel := a.names[want.Msgs[0].Base]; rel != "cur/"+want.Msgs[0].Base+":2,F" {
		t.Fatalf("the changed session's name: %q", rel)
	}
	if snap, _, err = b.Sync(true); err != nil || snap.Msgs[0].Flags != "F" {
		t.Fatalf("the other session does not see the change: %+v, %v", snap.Msgs, err)
	}
}

// TestLazyHeadersAndRenames: a header batch over an adopted index (the
// first search of a new process) reads every message and records it in
// the header cache, stamped, without building the listing's maps; a file
// another process renamed meanwhile is found again by a rescan.
func TestLazyHeadersAndRenames(t *testing.T) {
	s, _, _ := settledInbox(t, 6)
	f, got := lazyInbox(t, s)
	end := f.HeaderBatch()
	for i, m := range got.Msgs {
		h, _, err := f.ReadHeaderFields(m.Base, []string{"subject"})
		if err != nil || !strings.Contains(string(h), fmt.Sprintf("Subject: %d\r\n", i)) {
			t.Fatalf("header %d: %q %v", i, h, err)
		}
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	if f.lazy == nil || f.names != nil {
		t.Fatal("the header batch built the maps")
	}
	if f.hc.records != len(got.Msgs) {
		t.Fatalf("header cache: %v", f.hc)
	}

	other := inbox(t, s)
	if _, _, err := other.Sync(false); err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetFlags(strings.Clone(got.Msgs[3].Base), func(o Flags) Flags { return o.With("F", "") }); err != nil {
		t.Fatal(err)
	}
	if data, _, err := f.Read(got.Msgs[3].Base); err != nil || string(data) != "Subject: 3\r\n\r\nbody\r\n" {
		t.Fatalf("read after another process's rename: %q, %v", data, err)
	}
}

// TestFirstListingCompact: a Folder's first listing that writes the index
// takes the index's compact form (as a new process adopting it would),
// with the same snapshot; a later listing of the same Folder, after a
// change, keeps its maps for the next change to compare with.
func TestFirstListingCompact(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 5)
	if _, _, err := inbox(t, s).Sync(true); err != nil { // moves new/ to cur/
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := os.Remove(filepath.Join(s.Root, IndexName)); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, snap := lazyInbox(t, s) // listed, since there is no index: compacted
	if &snap.Msgs[0] != &f.lazy.msgs[0] || len(snap.Msgs) != 5 {
		t.Fatal("the snapshot is not the compact form's")
	}
	forgetListings()
	if again, adopted := newProcessSync(t, s, f.scanned); !adopted || fmt.Sprint(again.Msgs) != fmt.Sprint(snap.Msgs) {
		t.Fatalf("a new process: adopted %v, %v, want %v", adopted, again.Msgs, snap.Msgs)
	}

	// A change, settled, listed again by the same Folder.
	if _, err := f.SetFlags(snap.Msgs[1].Base, func(o Flags) Flags { return o.With("F", "") }); err != nil {
		t.Fatal(err)
	}
	deliver(t, s.Root, 1)
	time.Sleep(1100 * time.Millisecond)
	snap, _, err := f.Sync(true)
	if err != nil || len(snap.Msgs) != 6 || snap.Msgs[1].Flags != "F" {
		t.Fatalf("after a change: %+v, %v", snap.Msgs, err)
	}
	if f.lazy != nil || len(f.names) != 6 {
		t.Fatalf("a later listing: lazy %v, %d names", f.lazy != nil, len(f.names))
	}
}

// TestImplicitEntries: an adopted index whose every line names a file does
// not keep the UID list's entries beside its snapshot; they are made of it
// when the list grows (another process numbered a message), in UID order
// before the new line. An index with a line without a file keeps them all.
func TestImplicitEntries(t *testing.T) {
	s, want, _ := settledInbox(t, 5)
	f, snap := lazyInbox(t, s)
	if f.ul.order != nil || len(f.ul.implicit) != 5 || fmt.Sprint(snap.Msgs) != fmt.Sprint(want.Msgs) {
		t.Fatalf("adopted: %d entries, %d implicit, %v", len(f.ul.order), len(f.ul.implicit), snap.Msgs)
	}
	deliver(t, s.Root, 1)
	if _, _, err := inbox(t, s).Sync(true); err != nil { // another process numbers it
		t.Fatal(err)
	}
	got, _, err := f.Sync(true)
	if err != nil || len(got.Msgs) != 6 || got.Msgs[5].UID != 6 {
		t.Fatalf("after a delivery: %+v, %v", got.Msgs, err)
	}
	if len(f.ul.implicit) != 0 || len(f.ul.order) != 6 {
		t.Fatalf("entries: %d, implicit %d", len(f.ul.order), len(f.ul.implicit))
	}
	for i, e := range f.ul.order {
		if e.uid != uint32(i+1) || i < 5 && e.base != want.Msgs[i].Base {
			t.Errorf("entry %d: %d %s", i, e.uid, e.base)
		}
	}

	head := "S 1 1 1 1 1 1 1 1 1 0\nU 1 1\nN 2 0 7 4 0 0 -1\nmailsrv-uidlist 1 V7 N1 Gx\n"
	x, err := parseIndexBody(head + "1 cur/a:2,S\n2 b\n3 cur/c:2,S\n")
	if err != nil || len(x.msgs) != 2 || len(x.ul.implicit) != 0 || fmt.Sprint(x.ul.order) != "[{1 a} {2 b} {3 c}]" {
		t.Fatalf("a line without a file: %v, msgs %v, entries %v", err, x.msgs, x.ul.order)
	}
	x, err = parseIndexBody(head[:len(head)-len("N 2 0 7 4 0 0 -1\nmailsrv-uidlist 1 V7 N1 Gx\n")] +
		"N 2 0 7 3 0 0 -1\nmailsrv-uidlist 1 V7 N1 Gx\n1 cur/a:2,S\n2 cur/c:2,S\n")
	if err != nil || x.ul.order != nil || len(x.ul.implicit) != 2 {
		t.Fatalf("every line with a file: %v, entries %v, implicit %v", err, x.ul.order, x.ul.implicit)
	}
}
