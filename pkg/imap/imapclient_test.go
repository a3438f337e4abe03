package imap

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailsrv/pkg/maildir"
)

func goClient(t *testing.T, addr string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login("demo@example.test", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func deliverFile(t testing.TB, mbox, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := maildir.Deliver(mbox, data, strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
}

// go-imap v2's client, a peer we did not write, through a whole session.
func TestGoIMAPClient(t *testing.T) {
	cfg, mbox := testRoot(t)
	addr := testServer(t, cfg, nil)
	c := goClient(t, addr, nil)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	deliverFile(t, mbox, "testdata/multipart.eml")

	lists, err := c.List("", "*", nil).Collect()
	if err != nil || len(lists) != 6 {
		t.Fatalf("list: %d %v", len(lists), err)
	}
	if err := c.Create("Work/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 || sel.UIDValidity == 0 {
		t.Fatalf("select: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Envelope: true, Flags: true, UID: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Specifier: imap.PartSpecifierText, Part: []int{2}},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true},
			{Part: []int{1}, Peek: true},
		},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v %v", msgs, err)
	}
	m := msgs[0]
	if m.Envelope.Subject != "multipart test" || len(m.Envelope.To) != 2 || m.Envelope.To[1].Name != "Bob B" {
		t.Errorf("envelope: %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 3 || mp.Subtype != "mixed" {
		t.Fatalf("bodystructure: %#v", m.BodyStructure)
	}
	if inner, ok := mp.Children[1].(*imap.BodyStructureSinglePart); !ok || inner.MessageRFC822 == nil ||
		inner.MessageRFC822.Envelope.Subject != "inner" {
		t.Errorf("message/rfc822 part: %#v", mp.Children[1])
	}
	got := map[string]string{}
	for _, b := range m.BodySection {
		got[string(b.Section.Specifier)+strings.Trim(strings.Join(strings.Fields(strings.Repeat("x", len(b.Section.Part))), ""), "")] = string(b.Bytes)
	}
	if got["TEXTx"] != "inner body" || got["HEADER"] != "Subject: multipart test\r\n\r\n" || got["x"] != "first part" {
		t.Errorf("sections: %q", got)
	}
	if m.UID != 1 || m.RFC822Size <= 0 {
		t.Errorf("uid %d size %d", m.UID, m.RFC822Size)
	}

	// Append with flags and a date; APPENDUID comes back.
	body := "Subject: appended\r\n\r\nhello\r\n"
	ap := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen},
		Time: time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)})
	if _, err := ap.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := ap.Close(); err != nil {
		t.Fatal(err)
	}
	ad, err := ap.Wait()
	if err != nil || ad.UID != 2 || ad.UIDValidity != sel.UIDValidity {
		t.Fatalf("append: %+v %v", ad, err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	// The \Seen flag set by BODY[2.TEXT] (not PEEK) and the appended one.
	uids, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil || len(uids.AllUIDs()) != 2 {
		t.Fatalf("search seen: %v %v", uids, err)
	}
	res, err := c.Search(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "APPENDED"}}}, nil).Wait()
	if err != nil || len(res.AllSeqNums()) != 1 || res.AllSeqNums()[0] != 2 {
		t.Fatalf("search subject: %v %v", res, err)
	}
	cp, err := c.Copy(imap.SeqSetNum(1, 2), "Work/2024").Wait()
	if err != nil || cp.UIDValidity == 0 || len(cp.DestUIDs) != 1 {
		t.Fatalf("copy: %+v %v", cp, err)
	}
	mv, err := c.Move(imap.UIDSetNum(1), "Trash").Wait()
	if err != nil || mv.UIDValidity == 0 {
		t.Fatalf("move: %+v %v", mv, err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"INBOX": 0, "Work/2024": 2, "Trash": 1} {
		st, err := c.Status(name, &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait()
		if err != nil || *st.NumMessages != want {
			t.Errorf("status %s: %+v %v", name, st, err)
		}
	}
	if err := c.Rename("Work", "Play", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status("Play/2024", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *st.NumMessages != 2 {
		t.Errorf("after rename: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// IDLE sees a delivery made by another process.
func TestGoIMAPIdle(t *testing.T) {
	cfg, mbox := testRoot(t)
	addr := testServer(t, cfg, nil)
	var mu sync.Mutex
	exists := make(chan uint32, 10)
	c := goClient(t, addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			mu.Lock()
			defer mu.Unlock()
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	deliverFile(t, mbox, "testdata/multipart.eml")
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
