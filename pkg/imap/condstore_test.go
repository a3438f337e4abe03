package imap

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailsrv/pkg/mailstore"
)

// go-imap v2's client (a peer we did not write) through CONDSTORE: SELECT
// (CONDSTORE), FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE (kept
// and refused), a flag change by a session that did not enable CONDSTORE
// reported unasked with its MODSEQ, SEARCH MODSEQ and STATUS HIGHESTMODSEQ.
func TestGoIMAPCondstore(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 3)
	addr := testServer(t, cfg, nil)
	unasked := make(chan *imapclient.FetchMessageBuffer, 10)
	c := goClient(t, addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(msg *imapclient.FetchMessageData) {
			if buf, err := msg.Collect(); err == nil {
				unasked <- buf
			}
		},
	}})
	other := goClient(t, addr, nil)

	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil || sel.HighestModSeq == 0 {
		t.Fatalf("select: %+v %v", sel, err)
	}
	h0 := sel.HighestModSeq
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Flags: true, ModSeq: true}).Collect()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("fetch: %v %v", msgs, err)
	}
	for _, m := range msgs {
		if m.ModSeq != h0 {
			t.Errorf("uid %d: MODSEQ %d, want %d", m.UID, m.ModSeq, h0)
		}
	}
	stored, err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}},
		&imap.StoreOptions{UnchangedSince: h0}).Collect()
	if err != nil || len(stored) != 1 || stored[0].ModSeq <= h0 {
		t.Fatalf("conditional store: %+v %v", stored, err)
	}
	h1 := stored[0].ModSeq

	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	var h2 uint64
	select {
	case m := <-unasked:
		if m.UID != 3 || m.ModSeq <= h1 || len(m.Flags) == 0 {
			t.Fatalf("unasked FETCH: %+v", m)
		}
		h2 = m.ModSeq
	case <-time.After(10 * time.Second):
		t.Fatal("no FETCH for the other session's change")
	}

	changed, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Flags: true, ChangedSince: h1}).Collect()
	if err != nil || len(changed) != 1 || changed[0].UID != 3 || changed[0].ModSeq != h2 {
		t.Fatalf("CHANGEDSINCE: %+v %v", changed, err)
	}
	refused, err := c.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagAnswered}},
		&imap.StoreOptions{UnchangedSince: h1}).Collect()
	if err != nil || len(refused) != 0 {
		t.Fatalf("refused store: %+v %v", refused, err)
	}
	after, err := c.Fetch(imap.UIDSetNum(3), &imap.FetchOptions{Flags: true, ModSeq: true}).Collect()
	if err != nil || len(after) != 1 || after[0].ModSeq != h2 || slices.Contains(after[0].Flags, imap.FlagAnswered) {
		t.Fatalf("refused store changed the message: %+v %v", after, err)
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: h1 + 1}}, nil).Wait()
	if err != nil || len(found.AllUIDs()) != 1 || found.AllUIDs()[0] != 3 || found.ModSeq != h2 {
		t.Fatalf("SEARCH MODSEQ: %+v %v", found, err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait()
	if err != nil || st.HighestModSeq != h2 {
		t.Fatalf("STATUS: %+v %v", st, err)
	}
}

var modseqRE = regexp.MustCompile(`MODSEQ \(([0-9]+)\)`)

// During IDLE, a QRESYNC session hears of another session's flag change
// with UID and MODSEQ, and of its expunge as VANISHED; a session without
// QRESYNC gets the classic responses from the same changes.
func TestIdleCondstoreAndVanished(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 3)
	addr := testServer(t, cfg, nil)
	a, b, plain := dial(t, addr), dial(t, addr), dial(t, addr)
	for _, cl := range []*client{a, b, plain} {
		cl.login()
	}
	a.send("E ENABLE QRESYNC\r\n")
	a.until("E")
	selectInbox(t, a)
	selectInbox(t, b)
	selectInbox(t, plain)
	for _, cl := range []*client{a, plain} {
		cl.send("I IDLE\r\n")
		if l := cl.line(); l != "+ idling\r\n" {
			t.Fatalf("idle: %q", l)
		}
	}
	b.send("1 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")
	b.until("1")
	l := a.line()
	m := modseqRE.FindStringSubmatch(l)
	if m == nil || l != "* 2 FETCH (UID 2 FLAGS (\\Deleted \\Recent) MODSEQ ("+m[1]+"))\r\n" {
		t.Fatalf("QRESYNC session, flag change: %q", l)
	}
	if l := plain.line(); l != "* 2 FETCH (FLAGS (\\Deleted))\r\n" {
		t.Fatalf("plain session, flag change: %q", l)
	}
	b.send("2 EXPUNGE\r\n")
	b.until("2")
	if l := a.line(); l != "* VANISHED 2\r\n" {
		t.Fatalf("QRESYNC session, expunge: %q", l)
	}
	if l := plain.line(); l != "* 2 EXPUNGE\r\n" {
		t.Fatalf("plain session, expunge: %q", l)
	}
	a.send("DONE\r\n")
	a.until("I")
	a.send("S STATUS INBOX (HIGHESTMODSEQ)\r\n")
	r := a.until("S")
	got := regexp.MustCompile(`HIGHESTMODSEQ ([0-9]+)`).FindStringSubmatch(r)
	flagMod, _ := strconv.ParseUint(m[1], 10, 64)
	if got == nil {
		t.Fatalf("status: %q", r)
	}
	if h, _ := strconv.ParseUint(got[1], 10, 64); h <= flagMod {
		t.Errorf("HIGHESTMODSEQ %d after the expunge, the flag change was %d", h, flagMod)
	}
}

// A session that never enables CONDSTORE or QRESYNC makes no
// mod-sequence record, whatever it does; the first that does makes it.
func TestPlainSessionWritesNoModSeqs(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 3)
	addr := testServer(t, cfg, nil)
	a := dial(t, addr)
	a.login()
	selectInbox(t, a)
	a.send("1 STORE 1:2 +FLAGS (\\Deleted $Junk)\r\n2 FETCH 1:* (FLAGS BODY[])\r\n3 SEARCH ALL\r\n" +
		"4 EXPUNGE\r\n5 STATUS INBOX (MESSAGES UIDNEXT)\r\n6 EXAMINE INBOX\r\n")
	a.until("6")
	record := filepath.Join(mbox, mailstore.ModSeqName)
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a plain session made %s: %v", record, err)
	}
	a.send("7 FETCH 1 (MODSEQ)\r\n")
	if r := a.until("7"); !strings.Contains(r, "* OK [HIGHESTMODSEQ ") || !strings.Contains(r, "* 1 FETCH (MODSEQ (") {
		t.Fatalf("FETCH MODSEQ: %q", r)
	}
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("no record after FETCH MODSEQ: %v", err)
	}
}
