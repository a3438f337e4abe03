package mailstore

import "bytes"

// A search reads the header of every message in UID order, and the
// records of a folder's header cache are mostly in that order too (a
// first search writes them as it reads the files, a rewrite in UID
// order). So before finding a record through the hash of its base name
// (a hash of 50-60 bytes and a look-up in a map of 100,000 slots, a third
// of a warm search's time), the cache tries the record that follows the
// last one it used: when that one is the base's, it is its current
// record, provided no base has two records (a later one replaces an
// earlier one: a BODYSTRUCTURE kept for a message whose header was) and
// its slot was not replaced or forgotten since the file was read.
// headerCache.overridden holds the keys for which this may not hold,
// marked when a slot is set over an existing one (a record read for a
// base already seen, an entry learned again) or forgotten, and forgotten
// only when the file is read anew; such a base is looked up through its
// slot, as before (the hash is then cheap: its name was just read). A
// record found in turn is used only when it may be used as it is (cur/
// unchanged since it was written); anything else goes through the slot.

// setSlot sets the slot of key, noting when it replaces one (the map
// does not grow) or hides one of the base.
func (hc *headerCache) setSlot(key uint64, sl hcSlot) {
	n := len(hc.m)
	hc.m[key] = sl
	if len(hc.m) == n {
		hc.markOverridden(key)
	} else if hc.base != nil {
		if _, ok := hc.base.m[key]; ok {
			hc.markOverridden(key)
		}
	}
}

// markOverridden notes that key's records in the file may not be current.
func (hc *headerCache) markOverridden(key uint64) {
	if hc.overridden == nil {
		hc.overridden = map[uint64]bool{}
	}
	hc.overridden[key] = true
}

// isOverridden reports whether base's records may not be current.
func (hc *headerCache) isOverridden(base string) bool {
	if len(hc.overridden) == 0 && (hc.base == nil || len(hc.base.overridden) == 0) {
		return false
	}
	k := hc.key(base)
	return hc.overridden[k] || hc.base != nil && hc.base.overridden[k]
}

// nextRecord returns base's entry and header from the record after the
// last one used, when it is base's and that is its current record.
func (hc *headerCache) nextRecord(base string) (hcEntry, []byte, bool) {
	if hc.next == 0 || hc.next >= hc.end {
		return hcEntry{}, nil, false
	}
	head := hc.window(hc.next, int(min(32, hc.end-hc.next)))
	nl := bytes.IndexByte(head, '\n')
	if nl < 10 || head[8] != ' ' {
		return hcEntry{}, nil, false
	}
	size, ok := parseU64(head[9:nl], 10)
	if !ok || size > hcMaxEntry+hcMaxStructure+1024 {
		return hcEntry{}, nil, false
	}
	rec := hc.window(hc.next, nl+1+int(size))
	if payload := rec[min(len(rec), nl+1):]; len(payload) <= len(base) || payload[len(base)] != ' ' ||
		string(payload[:len(base)]) != base {
		return hcEntry{}, nil, false // another base's: the caller looks base up
	}
	if hc.isOverridden(base) {
		return hcEntry{}, nil, false
	}
	e, hdr, err := decodeRecord(rec, base)
	if err != nil {
		return hcEntry{}, nil, false // the look-up finds it bad too, and forgets it
	}
	hc.next += int64(len(rec))
	hc.inTurn++
	return e, hdr, true
}

// ReuseHeaderBuffers says that until the end of the current HeaderBatch
// the caller uses what ReadHeaderFields returns only until its next call
// (a search, matching one message at a time): the cache file is then read
// into one buffer, reused, and not into a new one every hcChunk bytes (40
// MB of garbage for a search of 100,000 messages, and the collections
// that follow).
func (f *Folder) ReuseHeaderBuffers() {
	if f.hc != nil && f.hc.batch {
		f.hc.reuse = true
	}
}

// scratch returns a buffer of size bytes for a window of the file: the
// last window's when the batch reuses them.
func (hc *headerCache) scratch(size int64) []byte {
	if hc.reuse && int64(cap(hc.win)) >= size {
		return hc.win[:size]
	}
	return make([]byte, size)
}
