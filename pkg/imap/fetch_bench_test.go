package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
)

// The FETCH benchmarks run bench/imap's two FETCH figures in one process:
// IMAP_BENCH_MAILDIR names a Maildir to take the messages of (hard links
// of its cur/, e.g. one made by bench/imap's `imapbench fill`); without
// it, 3,000 small messages are made. The client's reading is in the
// figures too: compare the server's functions in a profile
// (-cpuprofile), not ns/op alone. Run with TMPDIR under /work.

// benchFetchSession returns a logged-in session with INBOX selected and
// the number of messages.
func benchFetchSession(b *testing.B) (*client, int) {
	cl, _, n := benchFolderSession(b, 3000, func(i int) string { return fmt.Sprintf("report %d", i) })
	return cl, n
}

// benchFolderSession returns a logged-in session with INBOX selected, on
// a folder of IMAP_BENCH_MAILDIR's messages (hard links of its cur/) or,
// without it, of n messages made here, with the Subject subject(i); and
// the folder and its number of messages. cur/ is left to settle first, as
// in bench/imap: trusted unchanged without a stat of each message
// (mailstore's dirty rule wants its stamps a second old).
func benchFolderSession(b *testing.B, n int, subject func(int) string) (*client, string, int) {
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
		n = len(ents)
	} else {
		for i := range n {
			msg := fmt.Sprintf("Received: from mx.example.org\n\tby mx.example.test; Mon, 06 Jan 2025 08:02:59 +0000\n"+
				"From: =?UTF-8?B?U8O4cmVuIFNtaXRo?= <s%d@example.org>\nTo: demo@example.test, \"Ann\" <ann@example.net>\n"+
				"Subject: %s\nDate: Mon, 06 Jan 2025 04:02:59 -0400\nMessage-ID: <%d@example.org>\n\nbody\n", i, subject(i), i)
			name := fmt.Sprintf("%d.M%dP1Q%d.host,S=%d:2,S", 1600000000+300*i, i, i, len(msg))
			if err := os.WriteFile(filepath.Join(mbox, "cur", name), []byte(msg), 0600); err != nil {
				b.Fatal(err)
			}
		}
	}
	time.Sleep(1100 * time.Millisecond)
	cl := dial(b, testServer(b, cfg, nil))
	cl.login()
	cl.send("S SELECT INBOX\r\n")
	if r := cl.until("S"); !strings.Contains(r, "S OK") {
		b.Fatalf("select: %s", r)
	}
	return cl, mbox, n
}

// BenchmarkFetchEnvelopeWarm is FETCH of the last 100 ENVELOPEs, after a
// first one (which fills the header cache).
func BenchmarkFetchEnvelopeWarm(b *testing.B) {
	cl, n := benchFetchSession(b)
	cmd := fmt.Sprintf("F FETCH %d:%d (ENVELOPE)\r\n", n-99, n)
	fetch := func() {
		cl.send(cmd)
		if r := cl.until("F"); strings.Count(r, " FETCH (ENVELOPE (") != 100 || !strings.Contains(r, "F OK") {
			b.Fatalf("fetch: %.300s", r)
		}
	}
	fetch()
	for b.Loop() {
		fetch()
	}
}

// BenchmarkFetchFlagsAll is UID FETCH 1:* (FLAGS).
func BenchmarkFetchFlagsAll(b *testing.B) {
	cl, n := benchFetchSession(b)
	for b.Loop() {
		cl.send("F UID FETCH 1:* (FLAGS)\r\n")
		if r := cl.until("F"); strings.Count(r, "\r\n") != n+1 || !strings.Contains(r, "F OK") {
			b.Fatalf("fetch: %.300s", r)
		}
	}
}
