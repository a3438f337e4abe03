package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
)

// The search benchmarks run UID SEARCH HEADER SUBJECT over a folder, as
// bench/imap does: IMAP_BENCH_MAILDIR names a Maildir to take the
// messages of (hard links of its cur/, e.g. one made by bench/imap's
// `imapbench fill`); without it, 2,000 small messages are made, one in
// 200 with the needle. Run them with TMPDIR under /work (not /tmp).

const benchNeedle = "budget review"

// benchSearchSession returns a logged-in session with INBOX selected, on
// a folder made for the benchmark, and the number of matches to expect
// (-1: unknown, from IMAP_BENCH_MAILDIR).
func benchSearchSession(b *testing.B) (*client, string) {
	b.Helper()
	cfg, mbox := testRoot(b)
	if err := maildir.Create(mbox); err != nil {
		b.Fatal(err)
	}
	if src := os.Getenv("IMAP_BENCH_MAILDIR"); src != "" {
		ents, err := os.ReadDir(filepath.Join(src, "cur"))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range ents {
			if err := os.Link(filepath.Join(src, "cur", e.Name()), filepath.Join(mbox, "cur", e.Name())); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		for i := range 2000 {
			subj := fmt.Sprintf("Re: weekly report %d", i)
			if i%200 == 7 {
				subj = "Fwd: the " + benchNeedle + " notes"
			}
			msg := fmt.Sprintf("Received: from mx.example.org\n\tby mx.example.test; Mon, 06 Jan 2025 08:02:59 +0000\n"+
				"From: =?UTF-8?B?U8O4cmVuIFNtaXRo?= <s%d@example.org>\nTo: demo@example.test\nSubject: %s\n"+
				"Date: Mon, 06 Jan 2025 04:02:59 -0400\nMessage-ID: <%d@example.org>\n\nbody\n", i, subj, i)
			name := fmt.Sprintf("%d.M%dP1Q%d.host,S=%d:2,S", 1600000000+300*i, i, i, len(msg))
			if err := os.WriteFile(filepath.Join(mbox, "cur", name), []byte(msg), 0600); err != nil {
				b.Fatal(err)
			}
		}
	}
	// cur/ settled, as in bench/imap: trusted unchanged without a stat of
	// each message (mailstore's dirty rule wants its stamps a second old).
	time.Sleep(1100 * time.Millisecond)
	addr := testServer(b, cfg, nil)
	cl := dial(b, addr)
	cl.login()
	cl.send("S SELECT INBOX\r\n")
	if r := cl.until("S"); !strings.Contains(r, "S OK") {
		b.Fatalf("select: %s", r)
	}
	return cl, mbox
}

// benchSearch runs the search once and returns its answer.
func benchSearch(b *testing.B, cl *client) string {
	cl.send("U UID SEARCH HEADER SUBJECT \"" + benchNeedle + "\"\r\n")
	r := cl.until("U")
	if !strings.Contains(r, "U OK") || !strings.HasPrefix(r, "* SEARCH ") {
		b.Fatalf("search: %.200s", r)
	}
	return r
}

// BenchmarkSearchHeaderWarm: the search on a folder whose header cache is
// written (by a first search in the same session).
func BenchmarkSearchHeaderWarm(b *testing.B) {
	cl, _ := benchSearchSession(b)
	first := benchSearch(b, cl)
	if os.Getenv("IMAP_BENCH_MAILDIR") == "" && strings.Count(first, " ") != 1+10 {
		b.Fatalf("expected 10 matches: %s", first)
	}
	for b.Loop() {
		if r := benchSearch(b, cl); r != first {
			b.Fatalf("warm search found other messages: %.200s", r)
		}
	}
}

// BenchmarkSearchHeaderCold: the first search of a folder, which reads
// every message file and writes the header cache (removed before each
// run).
func BenchmarkSearchHeaderCold(b *testing.B) {
	cl, mbox := benchSearchSession(b)
	first := benchSearch(b, cl)
	for b.Loop() {
		b.StopTimer()
		if err := os.Remove(filepath.Join(mbox, mailstore.HeaderCacheName)); err != nil {
			b.Fatal(err)
		}
		// The cache's next read finds the file gone and forgets what it
		// had read; the places the process keeps are of another inode.
		cl.send("S SELECT INBOX\r\n")
		if r := cl.until("S"); !strings.Contains(r, "S OK") {
			b.Fatalf("select: %s", r)
		}
		b.StartTimer()
		if r := benchSearch(b, cl); r != first {
			b.Fatalf("cold search found other messages: %.200s", r)
		}
	}
}
