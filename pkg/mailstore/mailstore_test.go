package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"mailsrv/pkg/maildir"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func deliver(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		if _, err := maildir.Deliver(dir, []byte(fmt.Sprintf("Subject: %d\n\n", i)), strings.NewReader("body\n")); err != nil {
			t.Fatal(err)
		}
	}
}

func inbox(t *testing.T, s *Store) *Folder {
	t.Helper()
	f, err := s.Folder("inbox")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func uids(s Snapshot) []uint32 {
	var out []uint32
	for _, m := range s.Msgs {
		out = append(out, m.UID)
	}
	return out
}

func TestUIDsStableAndNeverReused(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 3)
	f := inbox(t, s)
	snap, recent, err := f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(uids(snap)) != "[1 2 3]" || len(recent) != 3 || snap.Next != 4 {
		t.Fatalf("first sync: %v recent %d next %d", uids(snap), len(recent), snap.Next)
	}
	// A second process sees the same numbers, and nothing recent.
	g := inbox(t, s)
	snap2, recent2, err := g.Sync(true)
	if err != nil || fmt.Sprint(uids(snap2)) != "[1 2 3]" || len(recent2) != 0 || snap2.Validity != snap.Validity {
		t.Fatalf("second process: %v %v %v", uids(snap2), recent2, err)
	}
	// Expunge the highest, compact: UID 3 is not handed out again.
	if err := f.Expunge([]string{snap.Msgs[2].Base}); err != nil {
		t.Fatal(err)
	}
	if err := f.ul.compact(f.Dir, f.scanBases); err != nil {
		t.Fatal(err)
	}
	deliver(t, s.Root, 1)
	snap3, _, err := g.Sync(true)
	if err != nil || fmt.Sprint(uids(snap3)) != "[1 2 4]" {
		t.Fatalf("after expunge and compact: %v %v", uids(snap3), err)
	}
}

func TestDamagedUIDListRebuilt(t *testing.T) {
	for _, damage := range []string{"garbage\n", "mailsrv-uidlist 1 V5 N3\n2 a\n1 b\n", ""} {
		s := newStore(t)
		deliver(t, s.Root, 2)
		f := inbox(t, s)
		snap, _, err := f.Sync(true)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(f.Dir, UIDListName)
		if damage == "" {
			err = os.Remove(p)
		} else {
			err = os.WriteFile(p, []byte(damage), 0600)
		}
		if err != nil {
			t.Fatal(err)
		}
		g := inbox(t, s)
		snap2, _, err := g.Sync(true)
		if err != nil {
			t.Fatalf("%q: %v", damage, err)
		}
		if len(snap2.Msgs) != 2 || snap2.Validity == snap.Validity && damage != "" {
			t.Errorf("%q: rebuilt %v validity %d (was %d)", damage, uids(snap2), snap2.Validity, snap.Validity)
		}
	}
}

func TestFlagsAppendCopy(t *testing.T) {
	s := newStore(t)
	f := inbox(t, s)
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	uid, val, err := f.Append([]byte("Subject: x\r\n\r\nhi\r\n"), "S", date)
	if err != nil || uid != 1 || val == 0 {
		t.Fatalf("append: %d %d %v", uid, val, err)
	}
	snap, _, err := f.Sync(true)
	if err != nil || len(snap.Msgs) != 1 || snap.Msgs[0].Flags != "S" {
		t.Fatalf("after append: %+v %v", snap, err)
	}
	data, mtime, err := f.Read(snap.Msgs[0].Base)
	if err != nil || string(data) != "Subject: x\r\n\r\nhi\r\n" || !mtime.Equal(date) {
		t.Fatalf("read: %q %v %v", data, mtime, err)
	}
	if n, err := f.Size(snap.Msgs[0].Base); err != nil || n != int64(len(data)) {
		t.Errorf("size %d %v", n, err)
	}
	now, err := f.SetFlags(snap.Msgs[0].Base, func(o Flags) Flags { return o.With("TF", "S") })
	if err != nil || now != "FT" {
		t.Fatalf("set flags: %q %v", now, err)
	}
	if err := s.Create("Work/Old"); err != nil {
		t.Fatal(err)
	}
	dst, err := s.Folder("Work/Old")
	if err != nil {
		t.Fatal(err)
	}
	snap, _, _ = f.Sync(true)
	got, err := f.CopyTo(dst, snap.Msgs)
	if err != nil || fmt.Sprint(got) != "[1]" {
		t.Fatalf("copy: %v %v", got, err)
	}
	ds, _, err := dst.Sync(true)
	if err != nil || len(ds.Msgs) != 1 || ds.Msgs[0].Flags != "FT" {
		t.Fatalf("copied: %+v %v", ds, err)
	}
}

func TestFolders(t *testing.T) {
	s := newStore(t)
	for _, bad := range []string{"", "a.b", "/a", "a/", "a//b", "x*", "é"} {
		if err := s.Create(bad); err == nil {
			t.Errorf("created %q", bad)
		}
	}
	for _, n := range []string{"a", "a/b", "a/b/c"} {
		if err := s.Create(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create("a"); err != ErrExists {
		t.Errorf("create twice: %v", err)
	}
	if err := s.Rename("a", "z"); err != nil {
		t.Fatal(err)
	}
	l, _ := s.List()
	if got := strings.Join(l, ","); got != "INBOX,Archive,Drafts,Junk,Sent,Trash,z,z/b,z/b/c" {
		t.Errorf("list after rename: %s", got)
	}
	if err := s.Delete("z/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("INBOX"); err != ErrInbox {
		t.Errorf("delete INBOX: %v", err)
	}
	if err := s.Subscribe("z", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe("Sent", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe("z", false); err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Subscriptions(); fmt.Sprint(subs) != "[Sent]" {
		t.Errorf("subscriptions %v", subs)
	}
}

func TestStaleLockBroken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.lock")
	if err := os.WriteFile(p, nil, 0600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// Several processes' worth of Folders, deliveries and flag changes at
// once: every message ends with one UID, the same for everyone.
func TestConcurrentSync(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &Folder{Name: "INBOX", Dir: s.Root}
			seen := map[uint32]bool{}
			var max uint32
			for i := range 15 {
				if _, err := maildir.Deliver(s.Root, []byte("Subject: c\n\n"), strings.NewReader("x\n")); err != nil {
					errs <- err
					return
				}
				snap, _, err := f.Sync(w%2 == 0)
				if err != nil {
					errs <- err
					return
				}
				// Nothing is expunged here: a view only ever grows at its
				// end, never gains a UID below one it already showed.
				for _, m := range snap.Msgs {
					if !seen[m.UID] && m.UID < max {
						errs <- fmt.Errorf("UID %d appeared after UID %d", m.UID, max)
						return
					}
					seen[m.UID] = true
				}
				if n := len(snap.Msgs); n > 0 {
					max = snap.Msgs[n-1].UID
				}
				if len(snap.Msgs) > 0 && i%3 == 0 {
					m := snap.Msgs[i%len(snap.Msgs)]
					if _, err := f.SetFlags(m.Base, func(o Flags) Flags { return o.With("S", "") }); err != nil && err != ErrGone {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f := inbox(t, s)
	snap, _, err := f.Sync(true)
	if err != nil || len(snap.Msgs) != 60 {
		t.Fatalf("%d messages, %v", len(snap.Msgs), err)
	}
	seen := map[uint32]bool{}
	for _, m := range snap.Msgs {
		if seen[m.UID] || m.UID > 60 {
			t.Fatalf("UID %d reused or skipped", m.UID)
		}
		seen[m.UID] = true
	}
	g := inbox(t, s)
	snap2, _, _ := g.Sync(false)
	if fmt.Sprint(uids(snap2)) != fmt.Sprint(uids(snap)) {
		t.Errorf("two views differ")
	}
}

func TestSortNames(t *testing.T) {
	names := []string{"1700000001.M5P1Q1.h", "1700000000.M10P1Q2.h", "1700000000.M9P1Q1.h", "junk", "1700000000.M9P1Q0.h"}
	sortNames(names)
	want := "junk 1700000000.M9P1Q0.h 1700000000.M9P1Q1.h 1700000000.M10P1Q2.h 1700000001.M5P1Q1.h"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("got %s", got)
	}
}

func TestKeywordsAndQuota(t *testing.T) {
	s := newStore(t)
	f := inbox(t, s)
	fl, err := f.Letters([]string{`\Seen`, "$Junk", "work"}, true)
	if err != nil || fl != "Sab" {
		t.Fatalf("letters %q %v", fl, err)
	}
	if got := f.FlagNames(fl); strings.Join(got, " ") != `\Seen $Junk work` {
		t.Errorf("names %v", got)
	}
	if fl, _ := f.Letters([]string{"WORK", "other"}, false); fl != "b" {
		t.Errorf("lookup without create: %q", fl)
	}
	for i := range 24 {
		if _, err := f.Letters([]string{fmt.Sprintf("k%d", i)}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Letters([]string{"one-too-many"}, true); err != ErrTooManyKeywords {
		t.Errorf("27th keyword: %v", err)
	}
	if _, err := f.Letters([]string{`\Recent`}, true); err == nil {
		t.Error(`\Recent accepted`)
	}
	for _, q := range []struct {
		in   string
		want int64
	}{{"10M", 10 << 20}, {"1g", 1 << 30}, {"512", 512}, {"5K", 5120}} {
		if n, err := ParseQuota(q.in); err != nil || n != q.want {
			t.Errorf("ParseQuota(%q) = %d %v", q.in, n, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "10Q", "99999999999T"} {
		if _, err := ParseQuota(bad); err == nil {
			t.Errorf("ParseQuota(%q) accepted", bad)
		}
	}
	deliver(t, s.Root, 2)
	if size, n, err := s.Usage(); err != nil || n != 2 || size == 0 {
		t.Errorf("usage %d %d %v", size, n, err)
	}
}

// Expunging most of a folder compacts its UID list; the survivors keep
// their UIDs and the next UID does not go back.
func TestExpungeCompacts(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 100)
	f := inbox(t, s)
	snap, _, err := f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, m := range snap.Msgs[:90] {
		gone = append(gone, m.Base)
	}
	if err := f.Expunge(gone); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(f.Dir, UIDListName))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 11 || !strings.Contains(string(data), " N101 G") {
		t.Fatalf("not compacted (%d lines): %.80q", lines, data)
	}
	g := inbox(t, s)
	snap2, _, err := g.Sync(true)
	if err != nil || fmt.Sprint(uids(snap2)) != fmt.Sprint(uids(Snapshot{Msgs: snap.Msgs[90:]})) || snap2.Next != 101 {
		t.Fatalf("after compaction: %v next %d %v", uids(snap2), snap2.Next, err)
	}
}

// A UID list replaced by a file of the same inode number and size (inode
// numbers are reused) is still noticed, by its header.
func TestUIDListReplacedSameSize(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 2)
	f := inbox(t, s)
	snap, _, err := f.Sync(true)
	if err != nil || fmt.Sprint(uids(snap)) != "[1 2]" {
		t.Fatalf("%v %v", uids(snap), err)
	}
	p := filepath.Join(f.Dir, UIDListName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	head := strings.Replace(lines[0], " N3 G", " N5 G", 1)
	i := strings.LastIndex(head, "G")
	head = head[:i+1] + strings.Repeat("0", len(head)-i-2) + "\n"
	repl := head + "3" + lines[1][1:] + "4" + lines[2][1:]
	if len(repl) != len(data) {
		t.Fatalf("test setup: %d != %d", len(repl), len(data))
	}
	if err := os.WriteFile(p, []byte(repl), 0600); err != nil { // same inode
		t.Fatal(err)
	}
	snap, _, err = f.Sync(true)
	if err != nil || fmt.Sprint(uids(snap)) != "[3 4]" {
		t.Fatalf("after replacement: %v %v", uids(snap), err)
	}
}

// AppendFrom streams: CRLF split across reads still becomes LF, and the
// sizes in the name match what IMAP sends.
func TestAppendFromStreams(t *testing.T) {
	s := newStore(t)
	f := inbox(t, s)
	msg := "Subject: s\r\n\r\nline\r\nbare\nlone\rcr\r\r\nend\r"
	uid, _, err := f.AppendFrom(iotest.OneByteReader(strings.NewReader(msg)), "", time.Time{})
	if err != nil || uid != 1 {
		t.Fatalf("%d %v", uid, err)
	}
	snap, _, _ := f.Sync(false)
	base := snap.Msgs[0].Base
	onDisk, err := os.ReadFile(filepath.Join(f.Dir, "cur", base+":2,"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Subject: s\n\nline\nbare\nlone\rcr\r\nend\r"; string(onDisk) != want {
		t.Errorf("stored %q, want %q", onDisk, want)
	}
	data, _, _ := f.Read(base)
	if n, _ := f.Size(base); n != int64(len(data)) || !strings.Contains(base, ",S="+strconv.Itoa(len(onDisk))+",") {
		t.Errorf("name %s, sizes %d/%d", base, n, len(data))
	}
}
