package mailstore

import (
	"maps"
	"sync"
)

// A process serving several sessions (imapd --listen) keeps the last
// mod-sequence record it read of each folder, so that a new CONDSTORE
// session need not read and parse a large record again: it takes a copy
// and reads only what was appended since (refresh sees a replaced file by
// its inode and header, as for the UID list). The maps of a kept record
// are shared, read-only, by the cache and the sessions that kept or
// adopted it; each copies them before its first change (copy on write).
//
// A session puts its record in the cache when there is none for the
// folder, or when the kept one is of another file, more than
// modSeqCacheLag bytes behind, or was compared with another listing than
// the one this session just compared it with (a new session that adopts
// both the listing, see cache.go, and the record then need not compare
// them again): a session that changes flags does not copy its maps again
// at every change. At most modSeqCacheMax messages are kept in all, other
// folders' records dropped to make room: about 8 MB per 100,000
// messages (maps and record text), plus the listing snapshot a kept record
// was compared with, which it holds on to (about 6 MB more when the
// listing cache has dropped it).
const (
	modSeqCacheMax = 300_000
	modSeqCacheLag = 256 << 10
)

var modSeqCache = struct {
	sync.Mutex
	m     map[string]*ModSeqs
	total int // len(live) of all in m
}{m: map[string]*ModSeqs{}}

// keep offers m to the cache after a successful Sync.
func (m *ModSeqs) keep() {
	if m.validity == 0 || len(m.live) > modSeqCacheMax {
		return
	}
	modSeqCache.Lock()
	defer modSeqCache.Unlock()
	old := modSeqCache.m[m.dir]
	if old != nil && old.ino == m.ino && old.header == m.header && m.offset-old.offset <= modSeqCacheLag &&
		(old.cmpMsgs == m.cmpMsgs || m.cmpGen != m.gen) {
		return
	}
	if old != nil {
		modSeqCache.total -= len(old.live)
		delete(modSeqCache.m, m.dir)
	}
	for k, o := range modSeqCache.m {
		if modSeqCache.total+len(m.live) <= modSeqCacheMax {
			break
		}
		modSeqCache.total -= len(o.live)
		delete(modSeqCache.m, k)
	}
	m.shared = true
	c := *m
	modSeqCache.m[m.dir] = &c
	modSeqCache.total += len(m.live)
}

// adoptModSeqs returns a copy of the kept record of dir, or nil.
func adoptModSeqs(dir string) *ModSeqs {
	modSeqCache.Lock()
	defer modSeqCache.Unlock()
	c := modSeqCache.m[dir]
	if c == nil {
		return nil
	}
	m := *c
	m.snapGen = 0 // another Folder's generation: compared() goes by the messages
	return &m
}

// own makes m's maps its own, before a change.
func (m *ModSeqs) own() {
	if m.shared {
		m.live = maps.Clone(m.live)
		m.gone = maps.Clone(m.gone)
		m.shared = false
	}
}
