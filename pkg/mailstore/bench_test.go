package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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

// benchHeaderFolder makes (once) a Maildir of n messages with headers like
// bench/imap's (Received, From, To, Subject, Date, Message-ID, MIME,
// about 560 bytes) and numbers them; MAILSTORE_BENCH_DIR and
// MAILSTORE_BENCH_N as for benchFolder.
func benchHeaderFolder(b *testing.B) (string, int) {
	b.Helper()
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("MAILSTORE_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	dir := os.Getenv("MAILSTORE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "Maildir")
	}
	dir = filepath.Join(dir, "headers-"+strconv.Itoa(n))
	if _, err := os.Stat(filepath.Join(dir, UIDListName)); err == nil {
		return dir, n
	}
	if err := maildir.Init(dir); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		msg := fmt.Sprintf("Return-Path: <s.smith%d@corp.example>\nReceived: from mx4.mail.example.com (mx8.lists.example.org [192.0.2.221])\n"+
			"\tby mx.example.test with ESMTPS id 3E64C857\n\tfor <demo@example.test>; Mon, 06 Jan 2025 08:02:59 +0000\n"+
			"From: =?UTF-8?B?U8O4cmVuIFNtaXRo?= <s.smith%d@corp.example>\nTo: \"Mei Fischer\" <demo@example.test>\n"+
			"Subject: Re: invoice quarterly schedule report weekly the ticket #%d\nDate: Mon, 06 Jan 2025 04:02:59 -0400\n"+
			"Message-ID: <%d.6aa3ac74@corp.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nbody\n", i, i, i, i)
		name := fmt.Sprintf("%d.M%dP1234Q%d.host,S=%d:2,S", 1600000000+300*i, i%1000000, i, len(msg))
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte(msg), 0600); err != nil {
			b.Fatal(err)
		}
	}
	f := &Folder{Name: "INBOX", Dir: dir}
	if _, _, err := f.Sync(true); err != nil {
		b.Fatal(err)
	}
	return dir, n
}

// benchReadSubjects is a new session's header SEARCH on one field: a
// fresh Folder, its Sync, and every message's Subject in one batch.
func benchReadSubjects(b *testing.B, dir string, n int, cached bool) {
	f := &Folder{Name: "INBOX", Dir: dir}
	snap, _, err := f.Sync(false)
	if err != nil || len(snap.Msgs) != n {
		b.Fatalf("%d messages, %v", len(snap.Msgs), err)
	}
	read := f.ReadHeader
	if cached {
		end := f.HeaderBatch()
		defer func() {
			if err := end(); err != nil {
				b.Fatal(err)
			}
		}()
		read = func(base string) ([]byte, time.Time, error) { return f.ReadHeaderFields(base, []string{"Subject"}) }
	}
	for _, m := range snap.Msgs {
		if h, _, err := read(m.Base); err != nil || len(h) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeadersFromFiles reads every header from its file (no cache).
func BenchmarkHeadersFromFiles(b *testing.B) {
	dir, n := benchHeaderFolder(b)
	for b.Loop() {
		benchReadSubjects(b, dir, n, false)
	}
}

// BenchmarkHeadersCached reads them through a warm header cache, in a
// new process (nothing kept in memory).
func BenchmarkHeadersCached(b *testing.B) {
	dir, n := benchHeaderFolder(b)
	benchReadSubjects(b, dir, n, true) // warms it
	b.ResetTimer()
	for b.Loop() {
		forgetKept()
		benchReadSubjects(b, dir, n, true)
	}
}

// BenchmarkHeadersCachedListen is the same in a process that keeps
// listings and record places between sessions (imapd --listen).
func BenchmarkHeadersCachedListen(b *testing.B) {
	dir, n := benchHeaderFolder(b)
	benchReadSubjects(b, dir, n, true)
	benchReadSubjects(b, dir, n, true) // reads the file whole: kept
	b.ResetTimer()
	for b.Loop() {
		benchReadSubjects(b, dir, n, true)
	}
}

// BenchmarkHeadersLearned is a first search's reading: every Subject of a
// folder without a header cache, in a batch that reuses buffers, each
// header read from its file and learned (the cache file removed and a
// fresh Folder synced before each round, not timed). Its allocations per
// message are a first search's garbage.
func BenchmarkHeadersLearned(b *testing.B) {
	dir, n := benchHeaderFolder(b)
	for b.Loop() {
		b.StopTimer()
		forgetKept()
		if err := os.Remove(filepath.Join(dir, HeaderCacheName)); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		f := &Folder{Name: "INBOX", Dir: dir}
		snap, _, err := f.Sync(false)
		if err != nil || len(snap.Msgs) != n {
			b.Fatalf("%d messages, %v", len(snap.Msgs), err)
		}
		b.StartTimer()
		end := f.HeaderBatch()
		f.ReuseHeaderBuffers()
		for _, m := range snap.Msgs {
			if h, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"}); err != nil || len(h) == 0 {
				b.Fatal(err)
			}
		}
		if err := end(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

// forgetKept empties what the process keeps between sessions.
func forgetKept() {
	listings.Lock()
	clear(listings.m)
	listings.total = 0
	listings.Unlock()
	hcShared.Lock()
	clear(hcShared.m)
	hcShared.total = 0
	hcShared.Unlock()
}

// BenchmarkSyncCold is the first SELECT ever of a folder with everything
// in cur/: no UID list, no index, nothing kept in memory. Each round
// removes the UID list and the caches (not timed) and numbers the folder
// again.
func BenchmarkSyncCold(b *testing.B) {
	dir := benchFolder(b)
	for b.Loop() {
		b.StopTimer()
		forgetKept()
		for _, n := range []string{UIDListName, IndexName, validityName} {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !os.IsNotExist(err) {
				b.Fatal(err)
			}
		}
		b.StartTimer()
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
