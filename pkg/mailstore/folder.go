package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	ul    uidList
	names map[string]string // base name → "cur/NAME" or "new/NAME", from the last scan

	stamps   [2]dirStamp // new/ and cur/ when the last scan began
	scanned  time.Time   // when the last scan began
	snap     *Snapshot   // the last snapshot, while nothing changed
	gen      uint64      // counts snapshots that may differ
	seenNext uint32      // the UID list's next UID just before the last listing
}

// Message is one message of a Snapshot.
type Message struct {
	UID   uint32
	Base  string // file name up to ':'
	Flags Flags
	InNew bool // still in new/ (the folder was only examined)
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
	var recent []string
	scanned := false
	if f.names == nil || f.dirty() {
		// Read the UID list before listing the directories: a UID given
		// before the listing belongs to a file the listing can see, so
		// one missing from it was expunged. UIDs given after may belong to
		// files that arrived after the listing; snapshot leaves them (and
		// all above them) for the next sync, so that UIDs only grow.
		err := f.ul.refresh(f.Dir)
		switch {
		case errors.Is(err, errDamaged) || f.ul.validity == 0:
			f.seenNext = 0
		case err != nil:
			return Snapshot{}, nil, err
		default:
			f.seenNext = f.ul.next
		}
		if claim {
			var err error
			if recent, err = f.claimNew(); err != nil {
				return Snapshot{}, nil, err
			}
		}
		if _, err := f.scan(); err != nil {
			return Snapshot{}, nil, err
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
	var missing []string
	for b := range f.names {
		if _, ok := f.ul.uids[b]; !ok {
			missing = append(missing, b)
		}
	}
	sortNames(missing)
	if err != nil || f.ul.validity == 0 || len(missing) > 0 {
		if err := f.ul.assign(f.Dir, missing, f.scanBases); err != nil {
			return Snapshot{}, nil, err
		}
	}
	snap := f.snapshot()
	f.gen++
	snap.Gen = f.gen
	f.snap = &snap
	return snap, recent, nil
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
	ino   uint64
	size  int64
}

func statDir(p string) (dirStamp, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return dirStamp{}, err
	}
	st := dirStamp{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

func (f *Folder) snapshot() Snapshot {
	s := Snapshot{Validity: f.ul.validity, Next: f.ul.next}
	for _, e := range f.ul.order {
		rel, ok := f.names[e.base]
		if !ok && e.uid >= f.seenNext {
			break // numbered by another process after our listing: next time
		}
		if !ok || f.ul.uids[e.base] != e.uid {
			continue
		}
		_, flags := splitName(rel[4:])
		s.Msgs = append(s.Msgs, Message{UID: e.uid, Base: e.base, Flags: flags, InNew: rel[:3] == "new"})
	}
	return s
}

func (f *Folder) claimNew() ([]string, error) {
	names, err := readNames(filepath.Join(f.Dir, "new"))
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, n := range names {
		base, _ := splitName(n)
		err := os.Rename(filepath.Join(f.Dir, "new", n), filepath.Join(f.Dir, "cur", base+":2,"))
		if err == nil {
			moved = append(moved, base)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("claim %s: %w", n, err)
		}
	}
	return moved, nil
}

// scan lists new/ and cur/ into f.names and returns the bases, unsorted.
func (f *Folder) scan() ([]string, error) {
	f.scanned = time.Now()
	names, err := f.list()
	if err != nil {
		return nil, err
	}
	// readdir(3) may miss a file renamed while it runs (a flag change by
	// another process). A message missing from a listing is only taken
	// as gone when a second listing misses it too; a first scan is always
	// done twice, since a miss there would hide the message for good.
	again := f.names == nil
	for base := range f.names {
		if _, ok := names[base]; !ok {
			again = true
			break
		}
	}
	if again {
		second, err := f.list()
		if err != nil {
			return nil, err
		}
		for base, rel := range second {
			names[base] = rel
		}
	}
	bases := make([]string, 0, len(names))
	for base := range names {
		bases = append(bases, base)
	}
	f.names = names
	return bases, nil
}

// list reads new/ and cur/ into a map of base name to "sub/NAME", and
// records the directories' stamps. A listing during which the directory
// changed is repeated (a few times at most), keeping every name seen.
func (f *Folder) list() (map[string]string, error) {
	names := map[string]string{}
	for i, sub := range []string{"new", "cur"} {
		dir := filepath.Join(f.Dir, sub)
		for try := 0; ; try++ {
			before, err := statDir(dir)
			if err != nil {
				return nil, fmt.Errorf("maildir: %w", err)
			}
			list, err := readNames(dir)
			if err != nil {
				return nil, err
			}
			for _, n := range list {
				base, _ := splitName(n)
				names[base] = sub + "/" + n
			}
			after, err := statDir(dir)
			if err != nil {
				return nil, fmt.Errorf("maildir: %w", err)
			}
			f.stamps[i] = before
			if after == before || try == 3 {
				break
			}
		}
	}
	return names, nil
}

// scanBases returns the bases in arrival order, for a rebuild.
func (f *Folder) scanBases() ([]string, error) {
	bases, err := f.scan()
	sortNames(bases)
	return bases, err
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
