package mailstore

import (
	"runtime/debug"
	"sync"
)

// A folder's first session builds its caches in one go: the listing
// numbered and written as the folder index (first.go), the header of
// every message learned for the header cache (hcache.go). Each holds some
// megabytes while it makes many more of garbage, and under Go's default
// GC target (the heap may grow to twice what was live at the last
// collection) that garbage, not what is kept, set the session's peak of
// memory: on 100,000 messages, twice Dovecot's. While one of them runs,
// lean lowers the target to leanPercent: a few more collections, of a heap
// that is mostly not scanned (names and record text hold no pointers).

// leanPercent is the GC target (GOGC) while a build runs.
const leanPercent = 20

var leanState struct {
	sync.Mutex
	holders int
	old     int // the target before the first holder
}

// lean lowers the GC target until release is called. Builds of several
// sessions (imapd --listen) may overlap: the target is restored when the
// last one ends. A target already lower, or off (GOGC set by the
// administrator), is kept.
func lean() (release func()) {
	leanState.Lock()
	if leanState.holders == 0 {
		leanState.old = debug.SetGCPercent(leanPercent)
		if leanState.old < leanPercent { // lower, or off (GOGC=off with a memory limit)
			debug.SetGCPercent(leanState.old)
		}
	}
	leanState.holders++
	leanState.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			leanState.Lock()
			defer leanState.Unlock()
			if leanState.holders--; leanState.holders == 0 {
				debug.SetGCPercent(leanState.old)
			}
		})
	}
}
