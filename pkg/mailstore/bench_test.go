package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"mailsrv/pkg/maildir"
)

// benchFolder makes (once) a Maildir of n empty messages in cur/, named as
// pkg/maildir names them, and numbers them. MAILSTORE_BENCH_DIR keeps it
// between runs (put it on a fast file system: not /tmp on these machines);
// MAILSTORE_BENCH_N sets n (10,000 by default).
func benchFolder(b *testing.B) string {
	b.Helper()
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("MAILSTORE_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	dir := os.Getenv("MAILSTORE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "Maildir")
	}
	dir = filepath.Join(dir, strconv.Itoa(n))
	if _, err := os.Stat(filepath.Join(dir, UIDListName)); err == nil {
		return dir
	}
	if err := maildir.Init(dir); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("%d.M%dP1234Q%d.host,S=1000,W=1020:2,S", 1600000000+300*i, i%1000000, i)
		if err := os.WriteFile(filepath.Join(dir, "cur", name), nil, 0600); err != nil {
			b.Fatal(err)
		}
	}
	f := &Folder{Name: "INBOX", Dir: dir}
	if _, _, err := f.Sync(true); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkSyncWarm is a new session's SELECT of a folder already
// numbered: a fresh Folder's first Sync.
func BenchmarkSyncWarm(b *testing.B) {
	dir := benchFolder(b)
	b.ResetTimer()
	for b.Loop() {
		f := &Folder{Name: "INBOX", Dir: dir}
		snap, _, err := f.Sync(true)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Msgs) == 0 {
			b.Fatal("no messages")
		}
	}
}

// BenchmarkSyncNewProcess is the same SELECT in a process that has not
// listed the folder yet (imapd on stdin/stdout: a process per session).
func BenchmarkSyncNewProcess(b *testing.B) {
	dir := benchFolder(b)
	b.ResetTimer()
	for b.Loop() {
		listings.Lock()
		clear(listings.m)
		listings.total = 0
		listings.Unlock()
		f := &Folder{Name: "INBOX", Dir: dir}
		snap, _, err := f.Sync(true)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Msgs) == 0 {
			b.Fatal("no messages")
		}
	}
}
