package mailstore

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// process is one process's view of a folder: its own Folder and record.
type process struct {
	f  *Folder
	ms *ModSeqs
}

func openProcess(t *testing.T, dir string) *process {
	t.Helper()
	forgetModSeqs() // another process: nothing kept
	return &process{f: &Folder{Name: "INBOX", Dir: dir}, ms: NewModSeqs(dir)}
}

func forgetModSeqs() {
	modSeqCache.Lock()
	defer modSeqCache.Unlock()
	clear(modSeqCache.m)
	modSeqCache.total = 0
}

// Sessions of one process share the record they read (copy on write): a
// new session starts from the kept copy and reads only what was appended;
// its reading does not change what another session sees.
func TestModSeqCacheSharedCopyOnWrite(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 3)
	a := openProcess(t, s.Root)
	snap := a.sync(t)
	h0 := a.ms.Highest()
	b := &process{f: &Folder{Name: "INBOX", Dir: s.Root}, ms: NewModSeqs(s.Root)}
	if b.ms.Highest() != h0 || b.ms.Of(1) != h0 {
		t.Fatalf("not adopted: %d %d, want %d", b.ms.Highest(), b.ms.Of(1), h0)
	}
	renameFlags(t, s.Root, snap.Msgs[0].Base, "F")
	b.sync(t)
	if b.ms.Of(1) <= h0 {
		t.Fatalf("b: uid 1 at %d", b.ms.Of(1))
	}
	if a.ms.Of(1) != h0 || a.ms.Highest() != h0 {
		t.Fatalf("b's reading changed a's copy: %d %d", a.ms.Of(1), a.ms.Highest())
	}
	a.sync(t)
	if a.ms.Of(1) != b.ms.Of(1) {
		t.Fatalf("a: uid 1 at %d, b: %d", a.ms.Of(1), b.ms.Of(1))
	}
	c := &process{f: &Folder{Name: "INBOX", Dir: s.Root}, ms: NewModSeqs(s.Root)}
	c.sync(t)
	if c.ms.Highest() != b.ms.Highest() {
		t.Fatalf("c: highest %d, want %d", c.ms.Highest(), b.ms.Highest())
	}
}

// sync looks at the folder as a CONDSTORE session does after a command.
func (p *process) sync(t *testing.T) Snapshot {
	t.Helper()
	snap, _, err := p.f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ms.Sync(p.f, snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// renameFlags changes a message's flags as a mail reader working on the
// Maildir would: by renaming its file.
func renameFlags(t *testing.T, dir, base, flags string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "cur", base+":2,*"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("file of %s: %v %v", base, matches, err)
	}
	if err := os.Rename(matches[0], filepath.Join(dir, "cur", base+":2,"+flags)); err != nil {
		t.Fatal(err)
	}
}

// A flag change made by another process (a rename), a keyword, a new
// message and an expunge each get a mod-sequence above all before, given
// once: the second process that looks finds it recorded.
func TestModSeqTracksOtherProcesses(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 3)
	a, b := openProcess(t, s.Root), openProcess(t, s.Root)
	snap := a.sync(t)
	h0 := a.ms.Highest()
	for _, m := range snap.Msgs {
		if a.ms.Of(m.UID) != h0 {
			t.Fatalf("uid %d: %d, want %d", m.UID, a.ms.Of(m.UID), h0)
		}
	}
	renameFlags(t, s.Root, snap.Msgs[1].Base, "S")
	b.sync(t)
	h1 := b.ms.Of(snap.Msgs[1].UID)
	if h1 <= h0 || b.ms.Highest() != h1 || b.ms.Of(snap.Msgs[0].UID) != h0 {
		t.Fatalf("after rename: uid 2 at %d, highest %d, was %d", h1, b.ms.Highest(), h0)
	}
	a.sync(t)
	if a.ms.Highest() != h1 || a.ms.Of(snap.Msgs[1].UID) != h1 {
		t.Fatalf("the first process bumped again: %d, want %d", a.ms.Highest(), h1)
	}

	renameFlags(t, s.Root, snap.Msgs[0].Base, "a") // a keyword
	deliver(t, s.Root, 1)
	if err := os.Remove(mustGlob(t, s.Root, snap.Msgs[2].Base)); err != nil {
		t.Fatal(err)
	}
	now := a.sync(t)
	h2 := a.ms.Highest()
	if h2 <= h1 || a.ms.Of(snap.Msgs[0].UID) != h2 || a.ms.Of(now.Msgs[len(now.Msgs)-1].UID) != h2 {
		t.Fatalf("keyword and new message: %d %d, highest %d, was %d", a.ms.Of(snap.Msgs[0].UID),
			a.ms.Of(now.Msgs[len(now.Msgs)-1].UID), h2, h1)
	}
	all := [][2]uint32{{1, 10}}
	live := func(uid uint32) bool {
		for _, m := range now.Msgs {
			if m.UID == uid {
				return true
			}
		}
		return false
	}
	if v := a.ms.Vanished(h1, all, now.Next, live); len(v) != 1 || v[0] != 3 {
		t.Errorf("vanished since %d: %v", h1, v)
	}
	if v := a.ms.Vanished(h2, all, now.Next, live); len(v) != 0 {
		t.Errorf("vanished since the expunge: %v", v)
	}
	if v := a.ms.Vanished(h0-1, all, now.Next, live); len(v) != 1 || v[0] != 3 {
		t.Errorf("vanished below the floor (all UIDs not there): %v", v)
	}
	b.sync(t)
	if b.ms.Highest() != h2 {
		t.Errorf("second process: highest %d, want %d", b.ms.Highest(), h2)
	}
}

func mustGlob(t *testing.T, dir, base string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "cur", base+":2,*"))
	if err != nil || len(m) != 1 {
		t.Fatalf("file of %s: %v %v", base, m, err)
	}
	return m[0]
}

// A record deleted, damaged, cut mid-line by a killed writer, or (with
// its limit file) lost entirely, never makes HIGHESTMODSEQ go back, and
// the UIDVALIDITY stays.
func TestModSeqRebuildNeverGoesBack(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 3)
	p := openProcess(t, s.Root)
	snap := p.sync(t)
	record := filepath.Join(s.Root, ModSeqName)
	for i, damage := range []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(record) }},
		{"garbage", func() error { return os.WriteFile(record, []byte("mailsrv-modseq 1 V1 H\nrubbish\n"), 0600) }},
		{"bad line", func() error { return appendFile(record, "12 x :S\n") }},
		{"other uidvalidity", func() error {
			data, err := os.ReadFile(record)
			if err != nil {
				return err
			}
			return os.WriteFile(record, []byte(strings.Replace(string(data), " V", " V1", 1)), 0600)
		}},
		{"cut mid-line", func() error { return appendFile(record, "99999999999999999 1 :") }},
		{"all lost", func() error {
			if err := os.Remove(filepath.Join(s.Root, modSeqLimitName)); err != nil {
				return err
			}
			return os.Remove(record)
		}},
	} {
		before := p.ms.Highest()
		if err := damage.do(); err != nil {
			t.Fatal(err)
		}
		renameFlags(t, s.Root, snap.Msgs[0].Base, map[bool]string{true: "F", false: "S"}[i%2 == 0])
		q := openProcess(t, s.Root)
		now := q.sync(t)
		if now.Validity != snap.Validity {
			t.Fatalf("%s: UIDVALIDITY changed", damage.name)
		}
		if q.ms.Highest() <= before {
			t.Fatalf("%s: highest %d, was %d", damage.name, q.ms.Highest(), before)
		}
		if damage.name == "cut mid-line" {
			data, _ := os.ReadFile(record)
			if !strings.HasSuffix(string(data), "\n") || strings.Contains(string(data), "99999999999999999") {
				t.Errorf("cut line kept: %q", data)
			}
		}
		p.sync(t)
		if p.ms.Highest() != q.ms.Highest() {
			t.Fatalf("%s: processes disagree: %d %d", damage.name, p.ms.Highest(), q.ms.Highest())
		}
	}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// UNCHANGEDSINCE refuses a message changed after the value, and one whose
// file another process renamed without recording it.
func TestModSeqUnchangedSince(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 2)
	p := openProcess(t, s.Root)
	snap := p.sync(t)
	h0 := p.ms.Highest()
	seen := func(f Flags) Flags { return f.With("S", "") }
	res, err := p.ms.SetFlags(p.f, snap.Msgs, true, h0, seen)
	if err != nil || res[0].Modified || res[1].Modified || res[0].Mod <= h0 || res[0].Mod != res[1].Mod || res[0].Flags != "S" {
		t.Fatalf("first store: %+v %v", res, err)
	}
	res, err = p.ms.SetFlags(p.f, snap.Msgs[:1], true, h0, func(f Flags) Flags { return f.With("F", "") })
	if err != nil || !res[0].Modified || res[0].Flags != "" && res[0].Mod != res[1-1].Mod {
		t.Fatalf("store on a changed message: %+v %v", res, err)
	}
	h1 := p.ms.Highest()
	renameFlags(t, s.Root, snap.Msgs[1].Base, "RS")
	res, err = p.ms.SetFlags(p.f, snap.Msgs[1:], true, h1, seen)
	if err != nil || !res[0].Modified {
		t.Fatalf("store over an unrecorded rename: %+v %v", res, err)
	}
	res, err = p.ms.SetFlags(p.f, snap.Msgs[1:], true, 0, seen)
	if err != nil || !res[0].Modified {
		t.Fatalf("UNCHANGEDSINCE 0 must fail: %+v %v", res, err)
	}
}

// Processes changing flags at once: every change gets its own
// mod-sequence, none is lost, and every process ends with the same record.
func TestModSeqConcurrentWriters(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 4)
	first := openProcess(t, s.Root)
	snap := first.sync(t)
	const rounds = 20
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &process{f: &Folder{Name: "INBOX", Dir: s.Root}, ms: NewModSeqs(s.Root)}
			snap, _, err := p.f.Sync(false)
			if err == nil {
				err = p.ms.Sync(p.f, snap)
			}
			for i := 0; err == nil && i < rounds; i++ {
				var res []Stored
				flag := string(rune('a' + w))
				res, err = p.ms.SetFlags(p.f, snap.Msgs[w:w+1], false, 0, func(f Flags) Flags {
					if f.Has(flag[0]) {
						return f.With("", flag)
					}
					return f.With(flag, "")
				})
				if err == nil {
					mu.Lock()
					if seen[res[0].Mod] {
						t.Errorf("mod-sequence %d given twice", res[0].Mod)
					}
					seen[res[0].Mod] = true
					mu.Unlock()
				}
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(seen) != 4*rounds {
		t.Fatalf("%d mod-sequences for %d changes", len(seen), 4*rounds)
	}
	check := openProcess(t, s.Root)
	check.sync(t)
	first.sync(t)
	if check.ms.Highest() != first.ms.Highest() {
		t.Errorf("highest %d and %d", check.ms.Highest(), first.ms.Highest())
	}
	for _, m := range snap.Msgs {
		if check.ms.Of(m.UID) != first.ms.Of(m.UID) || !seen[check.ms.Of(m.UID)] {
			t.Errorf("uid %d: %d and %d", m.UID, check.ms.Of(m.UID), first.ms.Of(m.UID))
		}
	}
}

// The record is rewritten when it holds many more lines than messages;
// the values stay, and expunges beyond maxGone are forgotten below a
// floor, under which Vanished reports every UID not there.
func TestModSeqCompaction(t *testing.T) {
	old := maxGone
	maxGone = 2
	t.Cleanup(func() { maxGone = old })
	s := newStore(t)
	deliver(t, s.Root, 8)
	p := openProcess(t, s.Root)
	snap := p.sync(t)
	for i := 0; i < 5; i++ {
		if err := os.Remove(mustGlob(t, s.Root, snap.Msgs[i].Base)); err != nil {
			t.Fatal(err)
		}
		p.sync(t)
	}
	for i := range 1100 {
		flags := map[bool]string{true: "S", false: ""}[i%2 == 0]
		if _, err := p.ms.SetFlags(p.f, snap.Msgs[7:], false, 0, func(Flags) Flags { return Flags(flags) }); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(s.Root, ModSeqName))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > 1+3+2+1024 {
		t.Errorf("record not compacted: %d lines", n)
	}
	q := openProcess(t, s.Root)
	now := q.sync(t)
	if q.ms.Highest() != p.ms.Highest() || q.ms.Of(8) != p.ms.Of(8) || q.ms.Floor() <= p.ms.Of(6) && q.ms.Floor() == 0 {
		t.Fatalf("after compaction: highest %d/%d, uid 8 %d/%d, floor %d", q.ms.Highest(), p.ms.Highest(),
			q.ms.Of(8), p.ms.Of(8), q.ms.Floor())
	}
	live := func(uid uint32) bool { return uid >= 6 }
	all := [][2]uint32{{1, 100}}
	if v := q.ms.Vanished(q.ms.Floor(), all, now.Next, live); len(v) != 2 || v[0] != 4 || v[1] != 5 {
		t.Errorf("vanished above the floor: %v", v)
	}
	if v := q.ms.Vanished(q.ms.Floor()-1, all, now.Next, live); len(v) != 5 {
		t.Errorf("vanished below the floor: %v (want 1:5)", v)
	}
}

func TestMergeRanges(t *testing.T) {
	got := MergeRanges([][2]uint32{{7, 9}, {1, 2}, {3, 3}, {8, 12}, {20, 20}, {1, 1}})
	want := [][2]uint32{{1, 3}, {7, 12}, {20, 20}}
	if !slices.Equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	for uid, in := range map[uint32]bool{0: false, 1: true, 3: true, 4: false, 7: true, 12: true, 13: false, 20: true, 21: false} {
		if InRanges(got, uid) != in {
			t.Errorf("InRanges(%d) = %v", uid, !in)
		}
	}
	if MergeRanges([][2]uint32{{1, 1<<32 - 1}, {5, 1<<32 - 1}})[0] != [2]uint32{1, 1<<32 - 1} {
		t.Error("ranges up to the largest UID")
	}
}
