package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
// file lists it twice, and in memory as on reading its first UID counts.
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
		if x.uids["a"] != 1 || x.uids["b"] != 2 || x.uids["c"] != 4 || !x.dups || len(x.order) != 4 || x.next != 5 || x.validity != 7 {
			t.Errorf("%+v", *x)
		}
	}
}
