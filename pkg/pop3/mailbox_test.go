package pop3

import (
	"bufio"
	"errors"
	"mailsrv/pkg/mailstore"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUIDL(t *testing.T) {
	tests := []struct{ name, want string }{
		{"1700000000.M1P2Q3R4.host,S=10,W=12:2,S", "1700000000.M1P2Q3R4.host"},
		{"1700000000.M1P2Q3R4.host,S=10,W=12:2,", "1700000000.M1P2Q3R4.host"},
		{"1700000000.M1P2Q3R4.host,S=10,W=12", "1700000000.M1P2Q3R4.host"},
		{"1700000000.M1P2Q3R4.host:2,RS", "1700000000.M1P2Q3R4.host"},
		{"1700000000.M1P2Q3R4.h\\057x", "1700000000.M1P2Q3R4.h\\057x"},
	}
	for _, tt := range tests {
		if got := UIDL(tt.name); got != tt.want {
			t.Errorf("UIDL(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, odd := range []string{strings.Repeat("x", 71), "a b", "h-abc", "caf\xc3\xa9", ""} {
		u := UIDL(odd)
		if !strings.HasPrefix(u, "h-") || len(u) > 70 || u != UIDL(odd) {
			t.Errorf("UIDL(%q) = %q: want a stable hash", odd, u)
		}
		for _, c := range []byte(u) {
			if c < 0x21 || c > 0x7e {
				t.Errorf("UIDL(%q) = %q: byte %#x out of range", odd, u, c)
			}
		}
	}
}

func TestWithFlag(t *testing.T) {
	for in, want := range map[string]string{
		"a:2,":    "a:2,S",
		"a:2,FR":  "a:2,FRS",
		"a:2,T":   "a:2,ST",
		"a:2,S":   "a:2,S",
		"a":       "a:2,S",
		"a:1,xyz": "a:1,xyz",
	} {
		if got := withFlag(in, 'S'); got != want {
			t.Errorf("withFlag(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSnapshot: new/ moves to cur/, sizes come from W= or from the file,
// the order is by delivery time, and the UIDL survives flag renames.
func TestSnapshot(t *testing.T) {
	e := newEnv(t)
	dir := e.mailbox()
	e.deliver("Subject: one\n\nbody\n")
	// A message from another delivery agent: no size in the name, bare
	// LFs, in cur/ with flags already.
	writeFile(t, filepath.Join(dir, "cur", "1000000000.foreign.host:2,F"), "A: b\n\nx\n")
	mb, err := OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	cur, nw := e.files()
	if len(nw) != 0 || len(cur) != 2 {
		t.Fatalf("cur=%v new=%v", cur, nw)
	}
	if len(mb.Msgs) != 2 || mb.Msgs[0].UID != "1000000000.foreign.host" {
		t.Fatalf("order: %+v", mb.Msgs)
	}
	if mb.Msgs[0].Size != int64(len("A: b\r\n\r\nx\r\n")) || mb.Msgs[1].Size != int64(len("Subject: one\r\n\r\nbody\r\n")) {
		t.Errorf("sizes %d %d", mb.Msgs[0].Size, mb.Msgs[1].Size)
	}
	uid := mb.Msgs[1].UID
	// imapd sets a flag: the name changes, the UIDL does not.
	old := filepath.Join(dir, "cur", mb.Msgs[1].Name)
	if err := os.Rename(old, old+"F"); err != nil {
		t.Fatal(err)
	}
	mb2, err := OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mb2.Msgs[1].UID != uid {
		t.Errorf("UIDL changed after a flag: %q != %q", mb2.Msgs[1].UID, uid)
	}
	// The first snapshot still opens it, found again by unique name.
	f, err := mb.Open(mb.Msgs[1])
	if err != nil {
		t.Fatalf("open after rename: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCommitAfterRenames: deletions and seen flags apply to files renamed by
// another process, and a file expunged meanwhile is no error.
func TestCommitAfterRenames(t *testing.T) {
	e := newEnv(t)
	dir := e.mailbox()
	for i := range 4 {
		e.deliver("Subject: " + strconv.Itoa(i) + "\n\nx\n")
	}
	mb, err := OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mb.Msgs {
		p := filepath.Join(dir, "cur", m.Name)
		if err := os.Rename(p, p+"F"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "cur", mb.Msgs[3].Name+"F")); err != nil {
		t.Fatal(err)
	}
	mb.Msgs[0].Deleted = true
	mb.Msgs[1].Retrieved = true
	mb.Msgs[3].Deleted = true
	quota := filepath.Join(dir, mailstore.MaildirsizeName)
	if err := os.WriteFile(quota, []byte("1000000S\n100 4\n"), 0600); err != nil {
		t.Fatal(err)
	}
	n, err := mb.Commit()
	if err != nil || n != 1 {
		t.Fatalf("Commit = %d, %v", n, err)
	}
	// Maildir++: the deletion is appended to maildirsize (one message, not
	// the one gone before).
	if b, err := os.ReadFile(quota); err != nil || string(b) != "1000000S\n100 4\n-"+strconv.FormatInt(mb.Msgs[0].Size, 10)+" -1\n" {
		t.Errorf("maildirsize %q, %v", b, err)
	}
	cur, _ := e.files()
	if len(cur) != 2 {
		t.Fatalf("cur = %v", cur)
	}
	seen := 0
	for _, name := range cur {
		if strings.HasSuffix(name, ":2,FS") {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("want one message marked seen: %v", cur)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l, err = Lock(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(dir); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestLockStale(t *testing.T) {
	path := func(dir string) string { return filepath.Join(dir, LockFile) }
	t.Run("dead process on this host", func(t *testing.T) {
		dir := t.TempDir()
		// A pid far above pid_max does not exist.
		writeFile(t, path(dir), "2147483000 "+lockHost+" 0 x\n")
		l, err := Lock(dir)
		if err != nil {
			t.Fatalf("stale lock not broken: %v", err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("this pid, not this process's lock", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, path(dir), strconv.Itoa(os.Getpid())+" "+lockHost+" 0 x\n")
		l, err := Lock(dir)
		if err != nil {
			t.Fatalf("stale lock not broken: %v", err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("live process elsewhere", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, path(dir), "2147483000 otherhost 0 x\n")
		if _, err := Lock(dir); !errors.Is(err, ErrInUse) {
			t.Fatalf("fresh lock of another host broken: %v", err)
		}
	})
	t.Run("no heartbeat", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, path(dir), "1 otherhost 0 x\n")
		old := time.Now().Add(-Stale - time.Minute)
		if err := os.Chtimes(path(dir), old, old); err != nil {
			t.Fatal(err)
		}
		l, err := Lock(dir)
		if err != nil {
			t.Fatalf("stale lock not broken: %v", err)
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	})
}

// Two files with one unique name still get distinct UIDLs.
func TestDuplicateUnique(t *testing.T) {
	e := newEnv(t)
	dir := e.mailbox()
	for _, n := range []string{"1700000000.a.host:2,S", "1700000000.a.host:2,F", "1700000000.a.host,S=5:2,", "1700000000.b.host:2,"} {
		writeFile(t, filepath.Join(dir, "cur", n), "x\n")
	}
	mb, err := OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range mb.Msgs {
		if seen[m.UID] {
			t.Errorf("UIDL %q twice", m.UID)
		}
		seen[m.UID] = true
	}
	if len(seen) != 4 {
		t.Errorf("got %d UIDLs", len(seen))
	}
}

// More sessions than MaxConnections are refused with [SYS/TEMP].
func TestMaxConnections(t *testing.T) {
	e := newEnv(t)
	e.srv.MaxConnections = 1
	e.start()
	c := e.dial()
	c2, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(30 * time.Second))
	l, err := bufio.NewReader(c2).ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("second connection: %q %v", l, err)
	}
	c.cmd("QUIT", "+OK")
}

// Messages are numbered in delivery order, microseconds included, as
// imapd numbers them.
func TestDeliveryOrder(t *testing.T) {
	e := newEnv(t)
	dir := e.mailbox()
	names := []string{"1700000001.M5P1.h", "1700000000.M900000P1.h", "1700000001.M40P1.h", "1700000001.M40P2.h", "odd"}
	for _, n := range names {
		writeFile(t, filepath.Join(dir, "cur", n+":2,"), "x\n")
	}
	mb, err := OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mb.Msgs {
		got = append(got, m.UID)
	}
	want := "odd 1700000000.M900000P1.h 1700000001.M5P1.h 1700000001.M40P1.h 1700000001.M40P2.h"
	if strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}
