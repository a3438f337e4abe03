package mailstore

import (
	"hash/maphash"
	"maps"
	"sync"
)

// A process serving several sessions (imapd --listen) keeps the record
// places its sessions read from each folder's header cache file, so that
// a new session need not read them all again (about 40 ms for 100,000
// records): it takes the kept places as a read-only base when the file is
// still the same one (inode) and at least as long, reads only what was
// appended since, and keeps its own slots (what it learns, checks or
// finds bad) above the base. Records are checked at each use as always.
// Bounded like the listings (cache.go): at most hcSharedMax places in all,
// other folders' dropped to make room.
const hcSharedMax = 1_000_000

// hcSeed hashes base names for every header cache of the process, so that
// kept places serve every session.
var hcSeed = maphash.MakeSeed()

// hcBase is the places of one file's records, shared read-only.
type hcBase struct {
	m       map[uint64]hcSlot
	ino     uint64
	end     int64
	records int
	// overridden: keys whose records may not be current (hcseq.go)
	overridden map[uint64]bool
}

var hcShared = struct {
	sync.Mutex
	m     map[string]*hcBase
	total int
}{m: map[string]*hcBase{}}

// slot returns the slot of key: the session's own, else the base's. A
// slot of length 0 hides the base's (a record found bad).
func (hc *headerCache) slot(key uint64) (hcSlot, bool) {
	if sl, ok := hc.m[key]; ok {
		return sl, sl.n > 0
	}
	if hc.base != nil {
		sl, ok := hc.base.m[key]
		return sl, ok
	}
	return hcSlot{}, false
}

// forget hides the slot of key.
func (hc *headerCache) forget(key uint64) {
	hc.markOverridden(key)
	if hc.base != nil {
		hc.m[key] = hcSlot{}
	} else {
		delete(hc.m, key)
	}
}

// adoptShared starts a header cache that has read nothing from the places
// kept for dir, if any fit the file (inode ino, size bytes).
func (hc *headerCache) adoptShared(dir string, ino uint64, size int64) {
	hcShared.Lock()
	b := hcShared.m[dir]
	hcShared.Unlock()
	if b == nil || b.ino != ino || b.end > size {
		return
	}
	hc.base, hc.ino, hc.end, hc.records = b, b.ino, b.end, b.records
}

// share keeps what hc read for the next sessions, when it read the file
// whole (nothing pending, nothing bad) and its own slots are many beside
// the base's: they become the new base, and hc starts a new layer.
func (hc *headerCache) share(dir string) {
	if hc.damaged || len(hc.pendData) > 0 || hc.end == 0 {
		return
	}
	baseLen := 0
	if hc.base != nil {
		baseLen = len(hc.base.m)
	}
	if len(hc.m) < 1000 || len(hc.m) < baseLen/4 || len(hc.m)+baseLen > hcSharedMax {
		return
	}
	m := hc.m
	if hc.base != nil {
		m = make(map[uint64]hcSlot, len(hc.base.m)+len(hc.m))
		for k, sl := range hc.base.m {
			m[k] = sl
		}
		for k, sl := range hc.m {
			if sl.n > 0 {
				m[k] = sl
			} else {
				delete(m, k)
			}
		}
	}
	for k, sl := range m {
		if sl.checked != 0 { // an index in this Folder's stamps: not for others
			sl.checked = 0
			m[k] = sl
		}
	}
	b := &hcBase{m: m, ino: hc.ino, end: hc.end, records: hc.records, overridden: hc.overridden}
	if hc.base != nil && len(hc.base.overridden) > 0 {
		b.overridden = maps.Clone(hc.base.overridden)
		maps.Copy(b.overridden, hc.overridden)
	}
	hc.base, hc.m, hc.room, hc.overridden = b, map[uint64]hcSlot{}, 0, nil
	hcShared.Lock()
	defer hcShared.Unlock()
	if old, ok := hcShared.m[dir]; ok {
		hcShared.total -= len(old.m)
		delete(hcShared.m, dir)
	}
	for k, old := range hcShared.m {
		if hcShared.total+len(m) <= hcSharedMax {
			break
		}
		hcShared.total -= len(old.m)
		delete(hcShared.m, k)
	}
	hcShared.m[dir] = b
	hcShared.total += len(m)
}
