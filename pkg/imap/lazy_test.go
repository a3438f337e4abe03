package imap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
)

// settledInbox delivers n messages, numbers them, marks the first seen
// \Seen, and lists the folder again once its directories are a second
// old, which writes the folder index; it returns the snapshot.
func settledInbox(t *testing.T, mbox string, n, seen int) mailstore.Snapshot {
	t.Helper()
	deliverN(t, mbox, n)
	f := inboxOf(t, mbox)
	snap, _, err := f.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range snap.Msgs[:seen] {
		if _, err := f.SetFlags(m.Base, func(o mailstore.Flags) mailstore.Flags { return o.With("S", "") }); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	if snap, _, err = inboxOf(t, mbox).Sync(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mbox, mailstore.IndexName)); err != nil {
		t.Fatalf("no folder index: %v", err)
	}
	return snap
}

// inboxOf is the INBOX of the mailbox mbox as another process sees it.
func inboxOf(t *testing.T, mbox string) *mailstore.Folder {
	t.Helper()
	st, err := mailstore.Open(mbox)
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Folder("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// holdsIndex reports whether this process (the test's server) has the
// folder index of mbox open: a lazy SELECT holds it until it settles.
func holdsIndex(t *testing.T, mbox string) bool {
	t.Helper()
	want, err := filepath.EvalSymlinks(filepath.Join(mbox, mailstore.IndexName))
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && l == want {
			return true
		}
	}
	return false
}

// TestLazySelect: a folder whose index is current is selected from the
// index's summary, without its messages; the first command that needs
// them gets those the client was told of, even after another process
// expunged one and delivered another, and those changes then come as
// updates (RFC 3501 section 7.4.1: EXPUNGE not during FETCH).
func TestLazySelect(t *testing.T) {
	cfg, mbox := testRoot(t)
	snap := settledInbox(t, mbox, 5, 2)
	addr := testServer(t, cfg, nil)
	cl := dial(t, addr)
	cl.login()
	cl.send("a SELECT INBOX\r\n")
	r := cl.until("a")
	for _, want := range []string{"* 5 EXISTS\r\n", "* 0 RECENT\r\n", "* OK [UNSEEN 3]", "[UIDNEXT 6]", "a OK [READ-WRITE]"} {
		if !strings.Contains(r, want) {
			t.Fatalf("SELECT: no %q in\n%s", want, r)
		}
	}
	if !holdsIndex(t, mbox) {
		t.Fatal("SELECT of a folder with a current index did not open it lazily")
	}
	cl.send("b NOOP\r\n")
	if r := cl.until("b"); r != "b OK NOOP completed\r\n" || !holdsIndex(t, mbox) {
		t.Fatalf("NOOP on an unchanged folder: %q, still lazy %v", r, holdsIndex(t, mbox))
	}

	other := inboxOf(t, mbox)
	if _, _, err := other.Sync(true); err != nil {
		t.Fatal(err)
	}
	if err := other.Expunge([]string{snap.Msgs[0].Base}); err != nil {
		t.Fatal(err)
	}
	if _, err := maildir.Deliver(mbox, []byte("Subject: late\n\n"), strings.NewReader("x\n")); err != nil {
		t.Fatal(err)
	}
	cl.send("c FETCH 2 (UID FLAGS)\r\n")
	r = cl.until("c")
	if !strings.HasPrefix(r, "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n") || !strings.Contains(r, "* 6 EXISTS\r\n") ||
		strings.Contains(r, "EXPUNGE") || holdsIndex(t, mbox) {
		t.Fatalf("FETCH after the changes:\n%s", r)
	}
	cl.send("d NOOP\r\n")
	if r := cl.until("d"); r != "* 1 EXPUNGE\r\nd OK NOOP completed\r\n" {
		t.Fatalf("NOOP after:\n%s", r)
	}
	cl.send("e UID FETCH 1:* (FLAGS)\r\n")
	r = cl.until("e")
	if n := strings.Count(r, "\n* "); n != 4 || !strings.HasPrefix(r, "* 1 FETCH (UID 2 ") ||
		!strings.Contains(r, "* 5 FETCH (UID 6 FLAGS (\\Recent))") {
		t.Fatalf("UID FETCH after:\n%s", r)
	}
}

// TestStatusFromIndex: STATUS of a folder whose index is current (from
// the index's summary) says what STATUS says after a full listing.
func TestStatusFromIndex(t *testing.T) {
	cfg, mbox := testRoot(t)
	snap := settledInbox(t, mbox, 4, 1)
	if _, ok := inboxOf(t, mbox).PeekCounts(); !ok {
		t.Fatal("no counts from a current index")
	}
	addr := testServer(t, cfg, nil)
	cl := dial(t, addr)
	cl.login()
	status := func() string {
		cl.send("s STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)\r\n")
		return cl.until("s")
	}
	fromIndex := status()
	if err := os.Remove(filepath.Join(mbox, mailstore.IndexName)); err != nil {
		t.Fatal(err)
	}
	listed := status()
	want := "* STATUS INBOX (MESSAGES 4 RECENT 0 UIDNEXT 5 UIDVALIDITY " + u32(snap.Validity) + " UNSEEN 3 DELETED 0 SIZE 68)\r\n"
	if fromIndex != listed || !strings.HasPrefix(listed, want) {
		t.Fatalf("STATUS from the index:\n%sfrom a listing:\n%swant %s", fromIndex, listed, want)
	}
}
