package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadRels lists a directory larger than one getdents64 buffer, with
// names of every length up to 255 bytes and dot files, and compares with
// os.File.Readdirnames.
func TestReadRels(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 6000 {
		name := fmt.Sprintf("%d.M%dP1Q%d.host,S=%d:2,S", 1700000000+i, i, i, i)
		name += strings.Repeat("x", i%(256-len(name)))
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0600); err != nil {
			t.Fatal(err)
		}
		want = append(want, "cur/"+name)
	}
	for _, dot := range []string{".hidden", ".x:2,S"} {
		if err := os.WriteFile(filepath.Join(dir, dot), nil, 0600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readRels(dir, "cur")
	if err != nil {
		t.Fatal(err)
	}
	names, err := readNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(want) {
		t.Fatalf("readNames: %d names, want %d", len(names), len(want))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("readRels: %d names, want %d; first %q", len(got), len(want), got[:min(3, len(got))])
	}
	if _, err := readRels(filepath.Join(dir, "missing"), "cur"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

// TestBuildAsRead checks that the UID list a first Sync builds (in one
// write, without reading it back) is in memory what reading the file
// gives, and that the next appends and a new reader agree with it.
func TestBuildAsRead(t *testing.T) {
	s := newStore(t)
	f := inbox(t, s)
	deliver(t, f.Dir, 40)
	if _, _, err := f.Sync(true); err != nil {
		t.Fatal(err)
	}
	var read uidList
	if err := read.refresh(f.Dir); err != nil {
		t.Fatal(err)
	}
	same := func(a, b *uidList) bool {
		a.index() // the map is built when first needed
		b.index()
		return a.validity == b.validity && a.next == b.next && a.ino == b.ino && a.offset == b.offset &&
			a.header == b.header && a.dups == b.dups && slices.Equal(a.order, b.order) && fmt.Sprint(a.uids) == fmt.Sprint(b.uids)
	}
	if !same(&f.ul, &read) || len(read.order) != 40 || read.next != 41 {
		t.Fatalf("built %+v\nread  %+v", f.ul, read)
	}
	deliver(t, f.Dir, 3)
	snap, _, err := f.Sync(true)
	if err != nil || len(snap.Msgs) != 43 || snap.Msgs[42].UID != 43 {
		t.Fatalf("after appends: %d messages, %v", len(snap.Msgs), err)
	}
	if err := read.refresh(f.Dir); err != nil || !same(&f.ul, &read) {
		t.Fatalf("after appends: %v\nbuilt %+v\nread  %+v", err, f.ul, read)
	}
}

// TestBuildDuplicate gives build a base twice, apart (no caller does): the
// file lists it twice, and in memory (once its map is built) as on
// reading its first UID counts.
func TestBuildDuplicate(t *testing.T) {
	dir := t.TempDir()
	var l uidList
	if err := l.build(dir, 7, []string{"a", "b", "a", "c", "c"}); err != nil {
		t.Fatal(err)
	}
	var read uidList
	if err := read.refresh(dir); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*uidList{&l, &read} {
		x.index()
		if x.uids["a"] != 1 || x.uids["b"] != 2 || x.uids["c"] != 4 || !x.dups || len(x.order) != 4 || x.next != 5 || x.validity != 7 {
			t.Errorf("%+v", *x)
		}
	}
}

// TestNumberFirst checks the first numbering of a folder (numberFirst)
// against the general path: the same UIDs in the same order, the same
// snapshot, and the same index lines, for names that sort differently as
// bases and as file names ("a" and "a.b"), a name without flags, and a
// name whose time does not parse.
func TestNumberFirst(t *testing.T) {
	s := newStore(t)
	f := inbox(t, s)
	deliver(t, f.Dir, 30)
	for _, n := range []string{"1700000000.M5P1Q1.a:2,S", "1700000000.M5P1Q1.a.b:2,FS", "1700000000.M5P1Q1.a-b", "junk:2,T"} {
		if err := os.WriteFile(filepath.Join(f.Dir, "cur", n), nil, 0600); err != nil {
			t.Fatal(err)
		}
	}
	news, err := readNames(filepath.Join(f.Dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range news[:20] { // the rest stay in new/: not all InNew
		flags := []string{":2,S", ":2,", ""}[i%3]
		if err := os.Rename(filepath.Join(f.Dir, "new", n), filepath.Join(f.Dir, "cur", n+flags)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // settled
	first, _, err := f.Sync(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Msgs) != 34 || first.Msgs[0].Base != "junk" {
		t.Fatalf("%d messages, first %+v", len(first.Msgs), first.Msgs[0])
	}
	var want, got []string // UIDs in sortNames' order of the bases
	for b := range f.names {
		want = append(want, b)
	}
	sortNames(want)
	for i, m := range first.Msgs {
		got = append(got, m.Base)
		if m.UID != uint32(i+1) {
			t.Errorf("UID %d at %d", m.UID, i)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("order:\n%v\nwant\n%v", got, want)
	}
	// The general path: the UID list read, the listing looked up by base.
	forgetKept()
	g := inbox(t, s)
	second, _, err := g.Sync(false)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(second.Msgs) != fmt.Sprint(first.Msgs) || second.Validity != first.Validity || second.Next != first.Next {
		t.Errorf("numberFirst:\n%v\ngeneral:\n%v", first, second)
	}
	inNew := 0
	for _, m := range first.Msgs {
		if m.InNew {
			inNew++
		}
	}
	if inNew != 10 {
		t.Errorf("%d messages in new/, want 10", inNew)
	}

	// The index, written only with nothing in new/: the same lines
	// either way.
	for _, n := range news[20:] {
		if err := os.Rename(filepath.Join(f.Dir, "new", n), filepath.Join(f.Dir, "cur", n+":2,S")); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{UIDListName, IndexName} {
		if err := os.Remove(filepath.Join(f.Dir, n)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	forgetKept()
	time.Sleep(1100 * time.Millisecond)
	if _, _, err := inbox(t, s).Sync(false); err != nil {
		t.Fatal(err)
	}
	index1, err := os.ReadFile(filepath.Join(f.Dir, IndexName))
	if err != nil {
		t.Fatalf("no index: %v", err)
	}
	forgetKept()
	if err := os.Remove(filepath.Join(f.Dir, IndexName)); err != nil {
		t.Fatal(err)
	}
	g = inbox(t, s)
	if _, _, err := g.Sync(false); err != nil {
		t.Fatal(err)
	}
	index2, err := os.ReadFile(filepath.Join(f.Dir, IndexName))
	if err != nil {
		t.Fatalf("no index: %v (%v)", err, g.CacheErr())
	}
	lines := func(b []byte) string { return strings.SplitN(string(b), "\n", 4)[3] } // after the head, S and U lines
	if lines(index1) != lines(index2) {
		t.Errorf("index lines differ:\n%s\n---\n%s", lines(index1), lines(index2))
	}
	if !strings.Contains(lines(index1), " cur/1700000000.M5P1Q1.a.b:2,FS\n") {
		t.Errorf("index: %s", lines(index1))
	}
}
