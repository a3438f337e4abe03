package mailstore

import (
	"fmt"
	"testing"
	"time"
)

// TestListingCache: a new session takes the listing another kept only
// while new/ and cur/ are unchanged, and a change made through an adopted
// listing is neither seen by the cache nor missed by the next session.
func TestListingCache(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 3)
	if _, _, err := inbox(t, s).Sync(true); err != nil { // claims: cur/ just changed
		t.Fatal(err)
	}
	kept := func() *listing {
		listings.Lock()
		defer listings.Unlock()
		return listings.m[s.Root]
	}
	if kept() != nil {
		t.Fatal("a listing of a directory changed within the second was kept")
	}
	time.Sleep(1100 * time.Millisecond) // let the stamps settle
	a := inbox(t, s)
	want, _, err := a.Sync(true)
	if err != nil || len(want.Msgs) != 3 || kept() == nil {
		t.Fatalf("first settled listing: %d messages, kept %v, %v", len(want.Msgs), kept() != nil, err)
	}
	b := inbox(t, s)
	got, _, err := b.Sync(true)
	if err != nil || !b.namesShared || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) {
		t.Fatalf("adopted: shared %v, %+v, %v", b.namesShared, got, err)
	}
	base := got.Msgs[1].Base
	if _, err := b.SetFlags(base, func(o Flags) Flags { return o.With("F", "") }); err != nil {
		t.Fatal(err)
	}
	if b.namesShared || kept().names[base] == b.names[base] {
		t.Fatalf("the change reached the kept listing: %q", kept().names[base])
	}
	c := inbox(t, s)
	snap, _, err := c.Sync(true)
	if err != nil || c.namesShared || len(snap.Msgs) != 3 || snap.Msgs[1].Flags != "F" {
		t.Fatalf("after a flag change: shared %v, %+v, %v", c.namesShared, snap, err)
	}
	deliver(t, s.Root, 1) // new/ changes: the next session lists and claims it
	d := inbox(t, s)
	snap, recent, err := d.Sync(true)
	if err != nil || d.namesShared || len(snap.Msgs) != 4 || len(recent) != 1 {
		t.Fatalf("after a delivery: shared %v, %d messages, %d recent, %v", d.namesShared, len(snap.Msgs), len(recent), err)
	}
}

// TestSettledListingsUnderRenames: new sessions keep seeing every message
// while another renames files (flag changes) in bursts with pauses longer
// than a second, so that listings are taken clean (one listing), kept and
// adopted as well as during renames.
func TestSettledListingsUnderRenames(t *testing.T) {
	const n = 200
	s := newStore(t)
	deliver(t, s.Root, n)
	if _, _, err := inbox(t, s).Sync(true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	done := make(chan struct{})
	errs := make(chan error, 1)
	flags := make(chan Snapshot, 1) // the writer's view at the end
	go func() {
		defer close(errs)
		w, err := s.Folder("INBOX")
		var snap Snapshot
		if err == nil {
			snap, _, err = w.Sync(true)
		}
		for burst := 0; err == nil && burst < 3; burst++ {
			for i := range 20 {
				m := snap.Msgs[(burst*20+i)%n]
				_, err = w.SetFlags(m.Base, func(o Flags) Flags {
					if o.Has('F') {
						return o.With("", "F")
					}
					return o.With("F", "")
				})
				if err != nil {
					break
				}
			}
			time.Sleep(1200 * time.Millisecond)
		}
		if err == nil {
			snap, _, err = w.Sync(false)
			flags <- snap
		}
		if err != nil {
			errs <- err
		}
		close(done)
	}()
	shared, sessions := 0, 0 // sessions, and those that kept or adopted a listing
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		f := inbox(t, s)
		snap, _, err := f.Sync(sessions%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		sessions++
		if f.namesShared {
			shared++
		}
		if len(snap.Msgs) != n || snap.Msgs[0].UID != 1 || snap.Msgs[n-1].UID != n {
			t.Fatalf("session %d sees %d messages", sessions, len(snap.Msgs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for err := range errs {
		t.Fatal(err)
	}
	want := <-flags
	got, _, err := inbox(t, s).Sync(false)
	if err != nil || fmt.Sprint(got.Msgs) != fmt.Sprint(want.Msgs) {
		t.Fatalf("a new session's view differs from the writer's: %v", err)
	}
	if shared == 0 || shared == sessions {
		t.Errorf("%d of %d sessions kept or adopted a listing: the test did not cover both", shared, sessions)
	}
}
