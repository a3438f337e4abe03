package mailstore

import (
	"slices"
	"strings"
)

// numberFirst numbers a folder listed by this sync that had no UID list:
// the first SELECT ever of a folder. It does what the general path of
// sync does (sort the bases, assign, snapshot, and the index's write in
// keep) without looking each of them up in f.names: the listing is
// sorted as "sub/NAME"s, which give the snapshot its flags and the index
// its files in UID order (f.ordered). On 100,000 messages the lookups,
// two per message in map of that size, were a sixth of the SELECT.
//
// ok is false when another process made the UID list meanwhile (assign
// then appended what it lacked, as it would have): the caller makes the
// snapshot the general way.
func (f *Folder) numberFirst(rels []string) (snap Snapshot, ok bool, err error) {
	if len(rels) != len(f.names) {
		rels = make([]string, 0, len(f.names))
		for _, rel := range f.names {
			rels = append(rels, rel)
		}
	}
	// Each name is read once, in the order listed (memory order), for
	// its sort key; the sort moves small keys (24 bytes, where moving the
	// whole record was a third of the sort's time). Bases and flags are
	// taken from the names again below rather than kept beside them: at
	// the moment of a first SELECT's peak of memory, 5 MB less.
	type key struct {
		secs, usec int64
		i          int
	}
	keys := make([]key, len(rels))
	for i, rel := range rels {
		s, u := nameTime(relBase(rel))
		keys[i] = key{s, u, i}
	}
	slices.SortFunc(keys, func(a, b key) int { // sortNames' order
		switch {
		case a.secs != b.secs:
			return cmpInt(a.secs, b.secs)
		case a.usec != b.usec:
			return cmpInt(a.usec, b.usec)
		}
		return strings.Compare(relBase(rels[a.i]), relBase(rels[b.i]))
	})
	bases := make([]string, len(keys))
	for i, k := range keys {
		bases[i] = relBase(rels[k.i])
	}
	listed := func() ([]string, error) { return bases, nil } // see listedBases
	if err := f.ul.assign(f.Dir, bases, listed); err != nil {
		return Snapshot{}, false, err
	}
	if len(f.ul.order) != len(bases) || f.ul.dups {
		return Snapshot{}, false, nil
	}
	for i, e := range f.ul.order {
		if e.uid != uint32(i+1) || e.base != bases[i] {
			return Snapshot{}, false, nil
		}
	}
	snap = Snapshot{Validity: f.ul.validity, Next: f.ul.next, Msgs: make([]Message, len(keys))}
	ordered := make([]string, len(keys))
	for i, k := range keys {
		rel := rels[k.i]
		base, flags := splitName(rel[strings.IndexByte(rel, '/')+1:])
		snap.Msgs[i] = Message{UID: uint32(i + 1), Base: base, Flags: flags, InNew: rel[:3] == "new"}
		ordered[i] = rel
	}
	f.ordered = ordered
	return snap, true, nil
}

// relBase is the base name of "sub/NAME".
func relBase(rel string) string {
	base, _ := splitName(rel[strings.IndexByte(rel, '/')+1:])
	return base
}
