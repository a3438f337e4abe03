package mailstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// firstNames are file names of cur/ for the first listing's tests: equal
// seconds, microseconds of different lengths, a name of no known form,
// sizes (S=) for the summary, flags of every kind.
var firstNames = []string{
	"1700000000.M5P1Q1.a,S=100:2,S", "1700000000.M12P1Q1.a,S=20:2,", "1700000000.M5P1Q1.b,S=3",
	"junk:2,T", "1699999999.M999999P7.c,S=40:2,FS", "1700000001.M0P1.d,S=1:2,ST",
}

func writeCur(t *testing.T, dir string, names []string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, "cur", n), nil, 0600); err != nil {
			t.Fatal(err)
		}
	}
}

// wantFirst is the snapshot's messages as the general path orders them:
// bases by sortNames, UIDs from 1.
func wantFirst(names []string) []Message {
	var bases []string
	flags := map[string]Flags{}
	for _, n := range names {
		b, fl := splitName(n)
		bases = append(bases, b)
		flags[b] = fl
	}
	sortNames(bases)
	var out []Message
	for i, b := range bases {
		out = append(out, Message{UID: uint32(i + 1), Base: b, Flags: flags[b]})
	}
	return out
}

// TestFirstListing: the first listing of a folder without a UID list,
// settled, writes the UID list and the index from the listing and adopts
// the index read back: the same messages, UIDs and summary as the general
// path gives, which a new process then adopts and a later listing agrees
// with.
func TestFirstListing(t *testing.T) {
	s := newStore(t)
	writeCur(t, s.Root, firstNames)
	time.Sleep(1100 * time.Millisecond) // settled
	f := inbox(t, s)
	snap, ok, err := f.firstListing()
	if err != nil || !ok {
		t.Fatalf("firstListing: %v, %v", ok, err)
	}
	want := wantFirst(firstNames)
	if fmt.Sprint(snap.Msgs) != fmt.Sprint(want) || snap.Next != uint32(len(want)+1) || snap.Validity == 0 {
		t.Fatalf("snapshot %+v\nwant %v", snap, want)
	}
	if f.lazy == nil || f.names != nil || &snap.Msgs[0] != &f.lazy.msgs[0] {
		t.Fatal("the index was not adopted")
	}
	var ul uidList
	if err := ul.refresh(s.Root); err != nil || ul.validity != snap.Validity || len(ul.order) != len(want) {
		t.Fatalf("the UID list: %v, validity %d, %d lines", err, ul.validity, len(ul.order))
	}
	for i, e := range ul.order {
		if e.uid != want[i].UID || e.base != want[i].Base {
			t.Errorf("UID list line %d: %d %s, want %d %s", i, e.uid, e.base, want[i].UID, want[i].Base)
		}
	}
	forgetListings()
	p := inbox(t, s)
	if sum, ok := p.Peek(); !ok || sum != snap.Summary() {
		t.Errorf("the index's summary %+v (%v), want %+v", sum, ok, snap.Summary())
	}
	if again, adopted := newProcessSync(t, s, f.scanned); !adopted || fmt.Sprint(again.Msgs) != fmt.Sprint(want) {
		t.Errorf("a new process: adopted %v, %v", adopted, again.Msgs)
	}
	if err := os.Remove(filepath.Join(s.Root, IndexName)); err != nil {
		t.Fatal(err)
	}
	forgetListings()
	g := inbox(t, s) // the general path: the UID list read, the folder listed
	if general, _, err := g.Sync(true); err != nil || fmt.Sprint(general.Msgs) != fmt.Sprint(want) {
		t.Errorf("the general path: %v, %v", general.Msgs, err)
	}
}

// TestFirstListingUnsettled: a folder changed within the last second is
// listed twice and its index made in memory, not written (another process
// could not trust its stamps).
func TestFirstListingUnsettled(t *testing.T) {
	s := newStore(t)
	writeCur(t, s.Root, firstNames)
	f := inbox(t, s)
	snap, ok, err := f.firstListing()
	if err != nil || !ok {
		t.Fatalf("firstListing: %v, %v", ok, err)
	}
	if want := wantFirst(firstNames); fmt.Sprint(snap.Msgs) != fmt.Sprint(want) || f.lazy == nil {
		t.Fatalf("snapshot %v (adopted %v), want %v", snap.Msgs, f.lazy != nil, want)
	}
	if _, err := os.Stat(filepath.Join(s.Root, IndexName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an index was written: %v", err)
	}
	// The Folder goes on as any: a later Sync sees a new message.
	deliver(t, s.Root, 1)
	time.Sleep(1100 * time.Millisecond)
	if again, _, err := f.Sync(true); err != nil || len(again.Msgs) != len(firstNames)+1 {
		t.Fatalf("after a delivery: %d messages, %v", len(again.Msgs), err)
	}
}

// TestFirstListingDeclines: firstListing leaves to the general path, having
// written nothing, a message in new/, a name that a UID list line cannot
// hold, and a UID list that another process made meanwhile.
func TestFirstListingDeclines(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T, s *Store){
		"in new/": func(t *testing.T, s *Store) { deliver(t, s.Root, 2) },
		"a space": func(t *testing.T, s *Store) { writeCur(t, s.Root, []string{"1700000000.M1P1.a b:2,"}) },
		"made meanwhile": func(t *testing.T, s *Store) {
			if _, _, err := inbox(t, s).Sync(true); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			writeCur(t, s.Root, firstNames)
			setup(t, s)
			listPath := filepath.Join(s.Root, UIDListName)
			before, _ := os.ReadFile(listPath)
			f := inbox(t, s)
			if _, ok, err := f.firstListing(); ok || err != nil {
				t.Fatalf("firstListing took it: %v, %v", ok, err)
			}
			if after, _ := os.ReadFile(listPath); string(after) != string(before) {
				t.Errorf("the UID list was written:\n%s", after)
			}
			snap, _, err := f.Sync(false) // the general path
			if err != nil || len(snap.Msgs) < len(firstNames) {
				t.Fatalf("Sync: %d messages, %v", len(snap.Msgs), err)
			}
		})
	}
}

// TestFirstListNumber: number sorts as sortNames and keeps, of a base
// listed twice (renamed between two listings), the later listing's file.
func TestFirstListNumber(t *testing.T) {
	fl := &firstList{ok: true}
	for _, rel := range []string{
		"cur/1700000002.M1P1.x:2,", "cur/1700000001.M1P1.y:2,", "cur/1700000001.M1P1.x:2,",
		"cur/1700000002.M1P1.x:2,S", "cur/1700000001.M1P1.y:2,",
	} {
		fl.add([]byte(rel), []uint32{uint32(len(rel))})
	}
	if !fl.number() {
		t.Fatal("number refused")
	}
	var got []string
	for _, k := range fl.keys {
		got = append(got, fl.listed(k.j))
	}
	want := []string{"cur/1700000001.M1P1.x:2,", "cur/1700000001.M1P1.y:2,", "cur/1700000002.M1P1.x:2,S"}
	if !slices.Equal(got, want) {
		t.Errorf("numbered %q, want %q", got, want)
	}
}

// TestFirstListingRandom: on folders of random names (times that tie in
// seconds and microseconds, names of no known form, every kind of flags),
// firstListing numbers as sortNames orders, and writes the UID list the
// general path would read back as the same.
func TestFirstListingRandom(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		seen := map[string]bool{}
		var names []string
		for range 1 + r.IntN(60) {
			var base string
			switch r.IntN(5) {
			case 0:
				base = fmt.Sprintf("odd%d.x", r.IntN(50))
			default:
				base = fmt.Sprintf("%d.M%dP%d.h", 1700000000+r.IntN(3), r.IntN(4)*1000, r.IntN(9))
			}
			if seen[base] {
				continue
			}
			seen[base] = true
			names = append(names, base+[]string{"", ":2,", ":2,S", ":2,FST", ":2,abc"}[r.IntN(5)])
		}
		s := newStore(t)
		writeCur(t, s.Root, names)
		f := inbox(t, s)
		snap, _, err := f.Sync(true)
		if err != nil {
			t.Fatal(err)
		}
		want := wantFirst(names)
		if f.lazy == nil || fmt.Sprint(snap.Msgs) != fmt.Sprint(want) {
			t.Fatalf("seed %d: adopted %v\n%v\nwant\n%v", seed, f.lazy != nil, snap.Msgs, want)
		}
		forgetListings()
		g := inbox(t, s) // reads the UID list, lists with maps
		if again, _, err := g.Sync(true); err != nil || fmt.Sprint(again.Msgs) != fmt.Sprint(want) {
			t.Fatalf("seed %d: the general path read %v, %v", seed, again.Msgs, err)
		}
	}
}

// TestFirstListingConcurrent: sessions that open a new folder at the same
// moment (one numbers it; the others find its UID list made meanwhile and
// read it) agree on every UID, and the list numbers each message once.
func TestFirstListingConcurrent(t *testing.T) {
	s := newStore(t)
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("%d.M%dP1.h,S=10:2,S", 1700000000+i/7, i%7))
	}
	writeCur(t, s.Root, names)
	time.Sleep(1100 * time.Millisecond) // settled: the index is written too
	const sessions = 8
	snaps := make([]Snapshot, sessions)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			f, err := s.Folder("INBOX")
			if err == nil {
				snaps[i], _, err = f.Sync(true)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	want := wantFirst(names)
	for i := range sessions {
		if errs[i] != nil || fmt.Sprint(snaps[i].Msgs) != fmt.Sprint(want) || snaps[i].Validity != snaps[0].Validity {
			t.Fatalf("session %d: %v, validity %d (%d), %d messages", i, errs[i], snaps[i].Validity, snaps[0].Validity, len(snaps[i].Msgs))
		}
	}
	var ul uidList
	if err := ul.refresh(s.Root); err != nil || len(ul.order) != len(names) || ul.next != uint32(len(names)+1) {
		t.Fatalf("the UID list: %v, %d lines, next %d", err, len(ul.order), ul.next)
	}
}

// TestClaimListed: a message that reached new/ after claimNew read it, and
// that the listing then found there, is claimed too (moved to cur/ and
// returned as \Recent); one that another session claimed meanwhile is
// left as listed.
func TestClaimListed(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 2)
	f := inbox(t, s)
	rels, err := f.scanRels()
	if err != nil || len(rels) != 2 {
		t.Fatalf("listing: %v, %v", rels, err)
	}
	other := rels[1] // "new/NAME", claimed by another session first
	if err := os.Rename(filepath.Join(s.Root, other), filepath.Join(s.Root, "cur", other[4:]+":2,")); err != nil {
		t.Fatal(err)
	}
	moved, err := f.claimListed(rels)
	base, _ := splitName(strings.TrimPrefix(rels[0], "cur/"))
	if err != nil || len(moved) != 1 || moved[0] != base || rels[0] != "cur/"+base+":2," || f.names[base] != rels[0] {
		t.Fatalf("claimed %v, %v; rels %v, names %v", moved, err, rels, f.names)
	}
	if _, err := os.Stat(filepath.Join(s.Root, rels[0])); err != nil {
		t.Fatalf("not in cur/: %v", err)
	}
	if rels[1] != other {
		t.Errorf("the other session's message: %s, want it as listed (%s)", rels[1], other)
	}
}

// TestFirstListChunks: a listing's chunks start small (a small folder's
// first listing takes a few KB, not a megabyte), each twice the last, and
// every name is found where it was put.
func TestFirstListChunks(t *testing.T) {
	fl := &firstList{ok: true}
	var want []string
	for i := range 3000 {
		rel := fmt.Sprintf("cur/%d.M%dP1.host,S=1000:2,S", 1700000000+i, i)
		want = append(want, rel)
		fl.add([]byte(rel), []uint32{uint32(len(rel))})
	}
	if !fl.ok || len(fl.chunks) < 3 || cap(fl.chunks[0]) != firstChunkMin {
		t.Fatalf("%d chunks, the first of %d bytes", len(fl.chunks), cap(fl.chunks[0]))
	}
	for c := 1; c < len(fl.chunks); c++ {
		if cap(fl.chunks[c]) != min(firstChunkMin<<c, firstChunk) {
			t.Errorf("chunk %d: %d bytes", c, cap(fl.chunks[c]))
		}
	}
	for j, rel := range want {
		if got := fl.listed(uint32(j)); got != rel {
			t.Fatalf("name %d: %q, want %q", j, got, rel)
		}
	}
}
