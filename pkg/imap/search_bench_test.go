package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsrv/pkg/mailstore"
)

// The search benchmarks run UID SEARCH HEADER SUBJECT over a folder, as
// bench/imap does: IMAP_BENCH_MAILDIR names a Maildir to take the
// messages of (hard links of its cur/, e.g. one made by bench/imap's
// `imapbench fill`); without it, 2,000 small messages are made, one in
// 200 with the needle. Run them with TMPDIR under /work (not /tmp).

const benchNeedle = "budget review"

// benchSearchSession returns a logged-in session with INBOX selected, on
// a folder made for the benchmark (2,000 messages, one in 200 with the
// needle, without IMAP_BENCH_MAILDIR), and the folder.
func benchSearchSession(b *testing.B) (*client, string) {
	cl, mbox, _ := benchFolderSession(b, 2000, func(i int) string {
		if i%200 == 7 {
			return "Fwd: the " + benchNeedle + " notes"
		}
		return fmt.Sprintf("Re: weekly report %d", i)
	})
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
	if os.Getenv("IMAP_BENCH_MAILDIR") == "" && len(strings.Fields(strings.SplitN(first, "\r\n", 2)[0])) != 2+10 {
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
