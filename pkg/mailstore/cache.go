package mailstore

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// A process serving several sessions (imapd --listen) keeps the last
// listing of each folder it scanned, so that a new session's first Sync
// need not list a large cur/ again: it takes a copy when new/ and cur/
// still have the stamps they had at that listing, and those were more
// than a second older than the listing (the rule dirty applies within a
// session). Only listings with nothing in new/ are kept, so that a session
// that claims new messages always lists. The UID list is then brought up
// to date as usual: it is read from where the copy stopped.
//
// What is kept is bounded: at most listingCacheMax messages in all (about
// 33 MB of heap per 100,000, twice that in RSS under Go's default GC
// target), dropping other folders' listings to make room: a server for
// many users keeps its largest, busiest folders, not every one.
const listingCacheMax = 300_000

type listing struct {
	stamps   [2]dirStamp
	scanned  time.Time
	names    map[string]string
	lazy     *lazyListing // instead of names: an adopted index not loaded (index.go)
	size     int          // messages listed
	ul       uidList
	seenNext uint32
	snap     Snapshot // of names and ul as kept
}

var listings = struct {
	sync.Mutex
	m     map[string]*listing
	total int // len(names) of all in m
}{m: map[string]*listing{}}

// keepListing records f's state after a Sync that listed the folder.
func (f *Folder) keepListing(snap Snapshot) {
	for i := range f.stamps {
		if !f.stamps[i].settled(f.scanned) {
			return // dirty would not trust it either
		}
	}
	size := len(f.names)
	if f.lazy != nil {
		size = f.lazy.live // all in cur/: an index is written only then
	}
	if len(snap.Msgs) == len(f.names) {
		// Every listed message is in snap: the array is quicker to go
		// through than the map.
		for i := range snap.Msgs {
			if snap.Msgs[i].InNew {
				return
			}
		}
	} else {
		for _, rel := range f.names {
			if strings.HasPrefix(rel, "new/") {
				return
			}
		}
	}
	if size > listingCacheMax {
		return
	}
	f.namesShared = true
	l := &listing{stamps: f.stamps, scanned: f.scanned, names: f.names, lazy: f.lazy, size: size,
		ul: f.ul.share(), seenNext: f.seenNext, snap: snap}
	listings.Lock()
	defer listings.Unlock()
	if old, ok := listings.m[f.Dir]; ok {
		listings.total -= old.size
		delete(listings.m, f.Dir)
	}
	for k, old := range listings.m {
		if listings.total+l.size <= listingCacheMax {
			break
		}
		listings.total -= old.size
		delete(listings.m, k)
	}
	listings.m[f.Dir] = l
	listings.total += l.size
}

// adoptListing gives a Folder that has not listed yet the kept listing of
// its directory, if new/ and cur/ did not change since. It reports whether
// it did, and the kept snapshot with the UID list's generation it was made
// at.
func (f *Folder) adoptListing() (Snapshot, bool) {
	l := keptListing(f.Dir)
	if l == nil {
		return Snapshot{}, false
	}
	for i, sub := range []string{"new", "cur"} {
		st, err := statDir(filepath.Join(f.Dir, sub))
		if err != nil || st != l.stamps[i] {
			return Snapshot{}, false
		}
	}
	f.take(l)
	return l.snap, true
}

func keptListing(dir string) *listing {
	listings.Lock()
	defer listings.Unlock()
	return listings.m[dir]
}

// take makes the kept listing l f's, shared.
func (f *Folder) take(l *listing) {
	f.stamps, f.scanned, f.seenNext = l.stamps, l.scanned, l.seenNext
	f.names, f.namesShared, f.lazy = l.names, true, l.lazy
	f.ul = l.ul.share()
}

// The maps of a kept listing are shared, read-only, by the cache and the
// Folders that kept or adopted it; a Folder copies one before its first
// change (copy on write).

// ownNames makes f.names f's own, before a change.
func (f *Folder) ownNames() {
	f.load()
	if f.namesShared {
		f.names = maps.Clone(f.names)
		f.namesShared = false
	}
}

// share returns a copy of l whose map both then share; each copies it
// before changing it (own). The order slices are clipped: an append copies.
func (l *uidList) share() uidList {
	l.shared = true
	l.order = slices.Clip(l.order)
	return *l
}

// own makes l's map its own, before a change.
func (l *uidList) own() {
	if l.shared {
		l.uids = maps.Clone(l.uids)
		l.shared = false
	}
}

// adoptListingAt is adoptListing for a listing peeked earlier (peek.go):
// the kept listing is taken if it was made of the same directory stamps
// and gives the same summary, whatever the directories are now.
func (f *Folder) adoptListingAt(stamps [2]dirStamp, sum Summary) (Snapshot, bool) {
	l := keptListing(f.Dir)
	if l == nil || l.stamps != stamps || !sum.numbers(l.snap) {
		return Snapshot{}, false
	}
	f.take(l)
	snap := l.snap
	f.gen++
	snap.Gen = f.gen
	f.snap = &snap
	return snap, true
}
