package imap

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
)

func selectInbox(t *testing.T, cl *client) string {
	t.Helper()
	cl.send("S SELECT INBOX\r\n")
	r := cl.until("S")
	if !strings.Contains(r, "S OK [READ-WRITE]") {
		t.Fatalf("select: %s", r)
	}
	return r
}

func deliverN(t *testing.T, mbox string, n int) {
	t.Helper()
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := maildir.Deliver(mbox, []byte("Subject: n\n\n"), strings.NewReader("x\n")); err != nil {
			t.Fatal(err)
		}
	}
}

// Another session's flag change and expunge reach an idling session; an
// expunge is not reported during FETCH, STORE or SEARCH, but at the next
// NOOP (RFC 3501 section 7.4.1).
func TestOtherSessionChanges(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 3)
	addr := testServer(t, cfg, nil)
	a, b := dial(t, addr), dial(t, addr)
	a.login()
	b.login()
	selectInbox(t, a)
	selectInbox(t, b)

	a.send("I IDLE\r\n")
	if l := a.line(); l != "+ idling\r\n" {
		t.Fatalf("idle: %q", l)
	}
	b.send("1 STORE 2 +FLAGS.SILENT (\\Flagged \\Deleted)\r\n")
	b.until("1")
	if l := a.line(); l != "* 2 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))\r\n" {
		t.Fatalf("flag change during IDLE: %q", l)
	}
	b.send("2 EXPUNGE\r\n")
	if r := b.until("2"); r != "* 2 EXPUNGE\r\n2 OK EXPUNGE completed\r\n" {
		t.Fatalf("expunge: %q", r)
	}
	if l := a.line(); l != "* 2 EXPUNGE\r\n" {
		t.Fatalf("expunge during IDLE: %q", l)
	}
	a.send("DONE\r\n")
	if r := a.until("I"); r != "I OK IDLE completed\r\n" {
		t.Fatalf("done: %q", r)
	}

	b.send("3 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n4 EXPUNGE\r\n")
	b.until("4")
	a.send("5 FETCH 1:* UID\r\n")
	if r := a.until("5"); strings.Contains(r, "EXPUNGE") || !strings.Contains(r, "* 1 FETCH (UID 1)") {
		t.Fatalf("FETCH reported an expunge or lost the message: %q", r)
	}
	a.send("6 SEARCH ALL\r\n")
	if r := a.until("6"); r != "* SEARCH 2\r\n6 OK SEARCH completed\r\n" {
		t.Fatalf("search skips the expunged message: %q", r)
	}
	a.send("7 NOOP\r\n")
	if r := a.until("7"); r != "* 1 EXPUNGE\r\n7 OK NOOP completed\r\n" {
		t.Fatalf("NOOP after expunge: %q", r)
	}
}

func TestIdleTimeout(t *testing.T) {
	cfg, _ := testRoot(t)
	addr := testServer(t, cfg, func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	cl := dial(t, addr)
	if l := cl.line(); l != "* BYE idle for too long\r\n" {
		t.Fatalf("got %q", l)
	}
	cl2 := dial(t, addr)
	cl2.login()
	cl2.send("I IDLE\r\n")
	cl2.line()
	if l := cl2.line(); l != "* BYE idle for too long\r\n" {
		t.Fatalf("IDLE: got %q", l)
	}
}

func TestAppendLimitAndPreauthLiteral(t *testing.T) {
	cfg, _ := testRoot(t)
	addr := testServer(t, cfg, func(s *Server) {
		s.Limits = DefaultLimitsForTest()
	})
	cl := dial(t, addr)
	cl.login()
	cl.send("A APPEND INBOX {2000}\r\n")
	if r := cl.until("A"); r != "A NO [TOOBIG] literal larger than 1024 bytes\r\n" {
		t.Fatalf("got %q", r)
	}
	cl.send("B APPEND INBOX {10}\r\n")
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("no continuation: %q", l)
	}
	cl.send("Subject: x\r\n")
	if r := cl.until("B"); !strings.HasPrefix(r, "B OK [APPENDUID ") {
		t.Fatalf("append: %q", r)
	}
}

func TestShutdownSaysBye(t *testing.T) {
	cfg, _ := testRoot(t)
	srv := &Server{Config: cfg, Hostname: "h"}
	addr := testServerWith(t, srv)
	cl := dial(t, addr.addr)
	addr.cancel()
	if l := cl.line(); l != "* BYE server shutting down\r\n" {
		t.Fatalf("got %q", l)
	}
}

func TestShutdownDuringIdle(t *testing.T) {
	cfg, _ := testRoot(t)
	srv := &Server{Config: cfg, Hostname: "h"}
	r := testServerWith(t, srv)
	cl := dial(t, r.addr)
	cl.login()
	cl.send("I IDLE\r\n")
	cl.line()
	r.cancel()
	if l := cl.line(); l != "* BYE server shutting down\r\n" {
		t.Fatalf("got %q", l)
	}
}

// A folder deleted under a session that has it selected ends the session
// with BYE rather than errors at every command.
func TestSelectedFolderDeleted(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 1)
	addr := testServer(t, cfg, nil)
	a, b := dial(t, addr), dial(t, addr)
	a.login()
	b.login()
	a.send("1 CREATE Doomed\r\n2 SELECT Doomed\r\n")
	a.until("2")
	b.send("3 DELETE Doomed\r\n")
	if r := b.until("3"); r != "3 OK DELETE completed\r\n" {
		t.Fatalf("delete: %q", r)
	}
	a.send("4 NOOP\r\n")
	if r := a.until("4"); r != "* BYE mailbox was deleted or renamed by another session\r\n4 OK NOOP completed\r\n" {
		t.Fatalf("got %q", r)
	}
}

// A UID list rebuilt with a new UIDVALIDITY (here: removed) ends the
// sessions that have the folder selected: their UIDs are no longer valid.
func TestUIDValidityChangeSaysBye(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 2)
	addr := testServer(t, cfg, nil)
	a := dial(t, addr)
	a.login()
	selectInbox(t, a)
	if err := os.Remove(filepath.Join(mbox, mailstore.UIDListName)); err != nil {
		t.Fatal(err)
	}
	// Another process rebuilds it; the new value is above the old.
	if _, _, err := (&mailstore.Folder{Name: "INBOX", Dir: mbox}).Sync(false); err != nil {
		t.Fatal(err)
	}
	a.send("1 NOOP\r\n")
	r := a.until("1")
	if !strings.HasPrefix(r, "* BYE [UIDVALIDITY ") || !strings.Contains(r, "mailbox was renumbered") {
		t.Fatalf("got %q", r)
	}
}

// The fetch macros and the items no other test asks for.
func TestFetchMacros(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 1)
	addr := testServer(t, cfg, nil)
	a := dial(t, addr)
	a.login()
	a.send("E EXAMINE INBOX\r\n")
	a.until("E")
	for cmd, want := range map[string]string{
		"FAST":            `^\* 1 FETCH \(FLAGS \(\) INTERNALDATE "[^"]+" RFC822\.SIZE 17\)`,
		"ALL":             `^\* 1 FETCH \(FLAGS \(\) INTERNALDATE "[^"]+" RFC822\.SIZE 17 ENVELOPE \(NIL "n" NIL NIL NIL NIL NIL NIL NIL NIL\)\)`,
		"FULL":            `BODY \("text" "plain" \("charset" "us-ascii"\) NIL NIL "7BIT" 3 1\)\)`,
		"RFC822.TEXT":     `^\* 1 FETCH \(RFC822\.TEXT \{3\}\r\nx\r\n\)`,
		"BODY[TEXT]<1.5>": `^\* 1 FETCH \(BODY\[TEXT\]<1> \{2\}\r\n\r\n\)`,
	} {
		a.send("F FETCH 1 " + cmd + "\r\n")
		r := a.until("F")
		if !regexp.MustCompile(want).MatchString(r) {
			t.Errorf("FETCH %s: %q", cmd, r)
		}
		if strings.Contains(r, `\Seen`) {
			t.Errorf("FETCH %s in EXAMINE set \\Seen: %q", cmd, r)
		}
	}
}

// A message larger than the spool threshold goes through a temporary file
// and comes back intact.
func TestLargeAppendSpooled(t *testing.T) {
	cfg, _ := testRoot(t)
	spool := t.TempDir()
	addr := testServer(t, cfg, func(s *Server) {
		s.Limits = wire.DefaultLimits
		s.Limits.SpoolAbove, s.Limits.SpoolDir = 1024, spool
	})
	cl := dial(t, addr)
	cl.login()
	body := strings.Repeat("0123456789abcdef\r\n", 20000) // 360 kB
	msg := "Subject: big\r\n\r\n" + body
	cl.send("A APPEND INBOX {" + strconv.Itoa(len(msg)) + "}\r\n")
	if l := cl.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("continuation: %q", l)
	}
	cl.send(msg + "\r\n")
	if r := cl.until("A"); !strings.HasPrefix(r, "A OK [APPENDUID") {
		t.Fatalf("append: %q", r)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("spool not cleaned: %d files", len(ents))
	}
	cl.send("S EXAMINE INBOX\r\nF FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT])\r\n")
	cl.until("S")
	r := cl.until("F")
	want := "* 1 FETCH (RFC822.SIZE " + strconv.Itoa(len(msg)) + " BODY[TEXT] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")\r\n"
	if !strings.HasPrefix(r, want) {
		t.Errorf("fetch: %.200q", r)
	}
}
