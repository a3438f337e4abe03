package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Folder is one Maildir++ folder, as seen by one session. It is not safe
// for concurrent use; other processes may change the same folder at any
// time, which Sync picks up.
type Folder struct {
	Name  string // IMAP name, "INBOX" or "Sent" or "a/b"
	Dir   string // the Maildir
	root  string // the mailbox (INBOX's Maildir), whose maildirsize counts this folder; "" for none
	ul    uidList
	names map[string]string // base name → "cur/NAME" or "new/NAME", from the last scan; nil while lazy
	lazy  *lazyListing      // an adopted index whose maps are not built yet (index.go): load() first
	peek  *peeked           // an index whose summary was given, not adopted yet (peek.go)
	// names is shared with the listing cache (cache.go): ownNames before a change
	namesShared bool

	stamps   [2]dirStamp // new/ and cur/ when the last scan began
	scanned  time.Time   // when the last scan began
	snap     *Snapshot   // the last snapshot, while nothing changed
	gen      uint64      // counts snapshots that may differ
	seenNext uint32      // the UID list's next UID just before the last listing
	ordered  []string    // during keep after numberFirst: the rel of each ul.order line

	hc       *headerCache // the header cache, once read (hcache.go)
	cacheErr error        // the last failure to write a cache file (CacheErr)
}

// Message is one message of a Snapshot. (UID and InNew share a word: 40
// bytes, not 48; a session holds two arrays of 100,000 of them.)
type Message struct {
	UID   uint32
	InNew bool   // still in new/ (the folder was only examined)
	Base  string // file name up to ':'
	Flags Flags
}

// Snapshot is the folder's messages at one moment, in UID order. Msgs is
// shared with the Folder: read it, do not change it.
type Snapshot struct {
	Validity, Next uint32
	Msgs           []Message
	Gen            uint64 // equal Gen, equal snapshot
}

// Sync scans the folder, gives UIDs to new messages, and returns the
// snapshot. With claim set, files in new/ are first moved to cur/ (as any
// Maildir reader does when it has seen a message); the bases moved are
// returned: they are \Recent for this session (RFC 3501 section 2.3.2).
func (f *Folder) Sync(claim bool) (Snapshot, []string, error) {
	snap, recent, err := f.sync(claim)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(f.Dir, "cur")); errors.Is(serr, os.ErrNotExist) {
			err = ErrNoFolder // deleted or renamed meanwhile
		}
	}
	return snap, recent, err
}

func (f *Folder) sync(claim bool) (Snapshot, []string, error) {
	var recent, rels []string
	scanned, adopted := false, false
	first := !f.listed() && f.peek == nil // this Folder's first listing (keep)
	if f.peek != nil {
		f.adoptPeek()
	}
	if !f.listed() {
		if snap, ok := f.adoptListing(); ok {
			f.gen++
			snap.Gen = f.gen
			f.snap = &snap
		} else {
			adopted = f.adoptIndex() // index.go
		}
	}
	if !f.listed() || f.dirty() {
		// Read the UID list before listing the directories: a UID given
		// before the listing belongs to a file the listing can see, so
		// one missing from it was expunged. UIDs given after may belong to
		// files that arrived after the listing; snapshot leaves them (and
		// all above them) for the next sync, so that UIDs only grow.
		ulErr := f.ul.refresh(f.Dir)
		switch {
		case errors.Is(ulErr, errDamaged) || f.ul.validity == 0:
			f.seenNext = 0
		case ulErr != nil:
			return Snapshot{}, nil, ulErr
		default:
			f.seenNext = f.ul.next
		}
		if claim {
			var err error
			if recent, err = f.claimNew(); err != nil {
				return Snapshot{}, nil, err
			}
		}
		if first && !f.listed() && ulErr == nil && f.ul.validity == 0 {
			snap, ok, err := f.firstListing() // first.go
			if err != nil {
				return Snapshot{}, nil, err
			}
			if ok {
				return f.keep(snap, false, true, false), recent, nil
			}
		}
		var err error
		if rels, err = f.scanRels(); err != nil {
			return Snapshot{}, nil, err
		}
		if claim {
			moved, err := f.claimListed(rels)
			if err != nil {
				return Snapshot{}, nil, err
			}
			recent = append(recent, moved...)
		}
		scanned = true
	}
	gen := f.ul.gen
	err := f.ul.refresh(f.Dir)
	if err != nil && !errors.Is(err, errDamaged) {
		return Snapshot{}, nil, err
	}
	if !scanned && err == nil && f.ul.gen == gen && f.snap != nil {
		return *f.snap, nil, nil // nothing changed: the common case of a poll
	}
	if err == nil && f.ul.validity != 0 && f.lazy != nil && f.ul.gen == f.lazy.gen {
		// An adopted index, and the UID list as it was read with it:
		// the snapshot needs no maps (index.go).
		return f.keep(f.lazySnapshot(), scanned, adopted, first), recent, nil
	}
	f.load()
	if err == nil && f.ul.validity == 0 && scanned {
		snap, ok, err := f.numberFirst(rels) // first.go
		if err != nil {
			return Snapshot{}, nil, err
		}
		if !ok {
			snap, _ = f.snapshot()
		}
		snap = f.keep(snap, scanned, adopted, first)
		f.ordered = nil
		return snap, recent, nil
	}
	if err == nil && f.ul.validity != 0 {
		// The common case: every listed message has its UID already, as
		// the snapshot's pass over the list shows; then missing is empty.
		if snap, matched := f.snapshot(); matched == len(f.names) {
			return f.keep(snap, scanned, adopted, first), recent, nil
		}
	}
	var missing []string
	f.ul.index()
	for b := range f.names {
		if _, ok := f.ul.uids[b]; !ok {
			missing = append(missing, b)
		}
	}
	sortNames(missing)
	if err != nil || f.ul.validity == 0 || len(missing) > 0 {
		live := f.scanBases
		if scanned {
			live = f.listedBases(missing)
		}
		if err := f.ul.assign(f.Dir, missing, live); err != nil {
			return Snapshot{}, nil, err
		}
	}
	snap, _ := f.snapshot()
	return f.keep(snap, scanned, adopted, first), recent, nil
}

// keep makes snap the folder's current snapshot, and keeps the listing for
// other sessions (and, when it was just taken, other processes: index.go)
// when it was just taken or read from the index. The first listing of the
// Folder (a SELECT that found no index) then takes the index's compact
// form; later ones keep their maps, which the next change compares with.
func (f *Folder) keep(snap Snapshot, scanned, adopted, first bool) Snapshot {
	f.gen++
	snap.Gen = f.gen
	f.snap = &snap
	if body := f.saveIndex(snap, scanned); body != nil && first {
		snap = f.compact(body, snap)
		f.snap = &snap
	}
	if scanned || adopted {
		f.keepListing(snap)
	}
	return snap
}

// dirty reports whether new/ or cur/ may have changed since the last
// scan. A directory changed within a second of the scan is not trusted:
// its time stamp may be too coarse to show a second change.
func (f *Folder) dirty() bool {
	for i, sub := range []string{"new", "cur"} {
		st, err := statDir(filepath.Join(f.Dir, sub))
		if err != nil || st != f.stamps[i] || st.mtime >= f.scanned.Add(-time.Second).UnixNano() {
			return true
		}
	}
	return false
}

// dirStamp identifies one state of a directory.
type dirStamp struct {
	mtime int64
	ctime int64
	ino   uint64
	size  int64
}

// settled reports whether the directory's last change (mtime and ctime)
// was more than a second before t, longer than any time stamp tick, so
// that a change at or after t shows as a different stamp.
func (st dirStamp) settled(t time.Time) bool {
	limit := t.Add(-time.Second).UnixNano()
	return st.mtime < limit && st.ctime < limit
}

func statDir(p string) (dirStamp, error) {
	var sys syscall.Stat_t
	if err := syscall.Stat(p, &sys); err != nil {
		return dirStamp{}, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return dirStamp{
		mtime: sys.Mtim.Nano(),
		ctime: sys.Ctim.Nano(),
		ino:   sys.Ino,
		size:  sys.Size,
	}, nil
}

// snapshot makes a snapshot of f.names and the UID list; matched is the
// number of listed messages in it (each base once: a base listed twice in
// the UID list keeps its first UID).
func (f *Folder) snapshot() (s Snapshot, matched int) {
	f.ul.index() // dups
	s = Snapshot{Validity: f.ul.validity, Next: f.ul.next, Msgs: make([]Message, 0, len(f.names))}
	for _, e := range f.ul.order {
		rel, ok := f.names[e.base]
		if !ok && e.uid >= f.seenNext {
			break // numbered by another process after our listing: next time
		}
		if !ok || f.ul.dups && f.ul.uids[e.base] != e.uid {
			continue
		}
		_, flags := splitName(rel[4:])
		s.Msgs = append(s.Msgs, Message{UID: e.uid, Base: e.base, Flags: flags, InNew: rel[:3] == "new"})
	}
	s.Msgs = slices.Clip(s.Msgs) // shared, read-only: an append copies
	return s, len(s.Msgs)
}

func (f *Folder) claimNew() ([]string, error) {
	names, err := readNames(filepath.Join(f.Dir, "new"))
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, n := range names {
		base, ok, err := f.claim(n)
		if err != nil {
			return nil, err
		}
		if ok {
			moved = append(moved, base)
		}
	}
	return moved, nil
}

// claim moves new/name to cur/, as "base:2,". ok is false when the file
// is gone: another session claimed it.
func (f *Folder) claim(name string) (base string, ok bool, err error) {
	base, _ = splitName(name)
	err = os.Rename(filepath.Join(f.Dir, "new", name), filepath.Join(f.Dir, "cur", base+":2,"))
	switch {
	case err == nil:
		return base, true, nil
	case errors.Is(err, os.ErrNotExist):
		return base, false, nil
	}
	return base, false, fmt.Errorf("claim %s: %w", name, err)
}

// claimListed claims the messages that the listing found in new/: they
// arrived after claimNew read new/ and before the listing. Left there, a
// session would report them without \Recent, and the next sync that moved
// them would not count them in a RECENT response. rels (the listing's
// files) and f.names are brought up to date.
func (f *Folder) claimListed(rels []string) ([]string, error) {
	var moved []string
	for i, rel := range rels {
		name, ok := strings.CutPrefix(rel, "new/")
		if !ok {
			continue
		}
		base, ok, err := f.claim(name)
		if err != nil {
			return nil, err
		}
		if ok { // else another session claimed it: as listed
			rels[i] = "cur/" + base + ":2,"
			f.names[base] = rels[i]
			moved = append(moved, base)
		}
	}
	return moved, nil
}

// scan lists new/ and cur/ into f.names and returns the bases, unsorted.
func (f *Folder) scan() ([]string, error) {
	rels, err := f.scanRels()
	if err != nil {
		return nil, err
	}
	bases := make([]string, len(rels))
	for i, rel := range rels {
		bases[i] = relBase(rel)
	}
	return bases, nil
}

// scanRels is scan returning the "sub/NAME" of each base, in the order
// listed when it can (one listing of each directory: a pass over them
// then reads memory in order, where the map's order jumps about).
func (f *Folder) scanRels() ([]string, error) {
	f.load()
	f.scanned = time.Now()
	names, rels, clean, err := f.list()
	if err != nil {
		return nil, err
	}
	// readdir(3) may miss a file renamed while it runs (a flag change by
	// another process). A message missing from a listing is only taken
	// as gone when a second listing misses it too; a first scan is done
	// twice, since a miss there would hide the message for good. Neither
	// is needed when the listing was clean: a rename into, out of or
	// within a directory sets its mtime and ctime to the current time, so
	// a directory whose stamp did not change across the listing and was
	// already more than a second old when the listing began (older than
	// any time stamp tick) was not changed during it.
	again := f.names == nil
	for base := range f.names {
		if _, ok := names[base]; !ok {
			again = true
			break
		}
	}
	if again && !clean {
		second, _, _, err := f.list()
		if err != nil {
			return nil, err
		}
		for base, rel := range second {
			names[base] = rel
		}
		rels = nil
	}
	if len(rels) != len(names) { // listed twice, or a base in new/ and cur/
		rels = make([]string, 0, len(names))
		for _, rel := range names {
			rels = append(rels, rel)
		}
	}
	f.names, f.namesShared = names, false
	return rels, nil
}

// list reads new/ and cur/ into a map of base name to "sub/NAME", and
// records the directories' stamps. A listing during which the directory
// changed is repeated (a few times at most), keeping every name seen.
// clean reports that neither directory changed during its last listing,
// nor within a second before the listing began (see scan). all is every
// "sub/NAME" read, in order, when each directory was read once, else nil.
func (f *Folder) list() (names map[string]string, all []string, clean bool, err error) {
	names = map[string]string{}
	clean = true
	once := true
	for i, sub := range []string{"new", "cur"} {
		dir := filepath.Join(f.Dir, sub)
		for try := 0; ; try++ {
			var rels []string
			st, err := listStamped(dir, func() (err error) {
				rels, err = readRels(dir, sub)
				return err
			})
			if err != nil {
				return nil, nil, false, err
			}
			if len(names) == 0 {
				names = make(map[string]string, len(rels)+len(f.names))
			}
			addNames(names, rels)
			if once = once && try == 0; once {
				if all == nil {
					all = rels
				} else {
					all = append(all, rels...)
				}
			}
			f.stamps[i] = st.before
			if st.unchanged || try == 3 {
				clean = clean && st.clean()
				break
			}
		}
	}
	if !once {
		all = nil
	}
	return names, all, clean, nil
}

// stampedListing is how a directory was while list read it.
type stampedListing struct {
	before    dirStamp  // the directory's stamp before
	start     time.Time // when the listing began
	unchanged bool      // the same stamp after
}

// clean reports that the directory did not change during the listing,
// nor within a second before it began (see scanRels).
func (st stampedListing) clean() bool { return st.unchanged && st.before.settled(st.start) }

// listStamped runs list, a listing of dir, between two stats of dir.
func listStamped(dir string, list func() error) (stampedListing, error) {
	st := stampedListing{start: time.Now()}
	before, err := statDir(dir)
	if err != nil {
		return st, fmt.Errorf("maildir: %w", err)
	}
	if err := list(); err != nil {
		return st, err
	}
	after, err := statDir(dir)
	if err != nil {
		return st, fmt.Errorf("maildir: %w", err)
	}
	st.before, st.unchanged = before, after == before
	return st, nil
}

// addNames adds base → "sub/NAME" to names for each "sub/NAME" of rels.
func addNames(names map[string]string, rels []string) {
	for _, rel := range rels {
		base, _ := splitName(rel[strings.IndexByte(rel, '/')+1:])
		names[base] = rel
	}
}

// scanBases returns the bases in arrival order, for a rebuild.
func (f *Folder) scanBases() ([]string, error) {
	bases, err := f.scan()
	sortNames(bases)
	return bases, err
}

// listedBases is scanBases for a sync that has just listed the folder:
// a rebuilt UID list numbers that listing (made twice when it was not
// clean, see scan) instead of listing 100,000 names again under the lock.
// A message that arrives meanwhile is numbered by the next sync, after
// these; one that goes meanwhile has its line dropped by the next compact,
// as any message expunged after a listing. missing is f.names' bases not
// in the UID list, sorted: when that is all of them, it is the answer.
func (f *Folder) listedBases(missing []string) func() ([]string, error) {
	return func() ([]string, error) {
		if len(missing) == len(f.names) {
			return missing, nil
		}
		bases := make([]string, 0, len(f.names))
		for base := range f.names {
			bases = append(bases, base)
		}
		sortNames(bases)
		return bases, nil
	}
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	names, err := d.Readdirnames(-1)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	out := names[:0]
	for _, n := range names {
		if !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	return out, nil
}
