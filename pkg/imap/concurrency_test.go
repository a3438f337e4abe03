package imap

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailsrv/pkg/maildir"
)

// Several sessions, concurrent deliveries and flag changes: every session
// ends with the same messages under the same UIDs and the same flags, and
// no UID is used twice.
func TestConcurrentSessionsConverge(t *testing.T) {
	cfg, mbox := testRoot(t)
	addr := testServer(t, cfg, nil)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	const sessions, perWriter, writers = 3, 15, 2
	var clients []*imapclient.Client
	for range sessions {
		c := goClient(t, addr, nil)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				h := fmt.Sprintf("Subject: w%d-%d\n\n", w, i)
				if _, err := maildir.Deliver(mbox, []byte(h), strings.NewReader("x\n")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for k, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := c.Noop().Wait(); err != nil {
					errs <- err
					return
				}
				flag := []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered}[k]
				// UID STORE on whatever exists now; UIDs that do not exist yet are skipped.
				set := imap.UIDSetNum(imap.UID(1 + i*3 + k))
				if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{flag}, Silent: true}, nil).Close(); err != nil &&
					!strings.Contains(err.Error(), "EXPUNGEISSUED") {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var views []string
	for _, c := range clients {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, Flags: true, Envelope: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		seen := map[imap.UID]bool{}
		for _, m := range msgs {
			if seen[m.UID] {
				t.Fatalf("UID %d twice", m.UID)
			}
			seen[m.UID] = true
			f := make([]string, 0, len(m.Flags))
			for _, x := range m.Flags {
				if x != `\Recent` {
					f = append(f, string(x))
				}
			}
			sort.Strings(f)
			lines = append(lines, fmt.Sprintf("%d %s %v", m.UID, m.Envelope.Subject, f))
		}
		if len(lines) != writers*perWriter {
			ul, _ := os.ReadFile(filepath.Join(mbox, "mailsrv-uidlist"))
			t.Fatalf("session %d sees %d messages:\n%s\nuidlist:\n%s", len(views), len(lines), strings.Join(lines, "\n"), ul)
		}
		views = append(views, strings.Join(lines, "\n"))
	}
	for i := 1; i < len(views); i++ {
		if views[i] != views[0] {
			t.Fatalf("views differ:\n%s\n---\n%s", views[0], views[i])
		}
	}
}

// Deliveries, flag changes and expunges from several sessions at once: at
// the end every session shows exactly the messages on disk, under the same
// UIDs, and a UID once expunged never comes back.
func TestConcurrentExpungesConverge(t *testing.T) {
	cfg, mbox := testRoot(t)
	addr := testServer(t, cfg, nil)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	var clients []*imapclient.Client
	for range 3 {
		c := goClient(t, addr, nil)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			h := fmt.Sprintf("Subject: m%d\n\n", i)
			if _, err := maildir.Deliver(mbox, []byte(h), strings.NewReader("x\n")); err != nil {
				errs <- err
				return
			}
		}
	}()
	for k, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				set := imap.UIDSetNum(imap.UID(1 + i*3 + k))
				flag := imap.FlagSeen
				if k == 0 {
					flag = imap.FlagDeleted
				}
				err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{flag}, Silent: true}, nil).Close()
				if err == nil && k == 0 && i%2 == 1 {
					_, err = c.Expunge().Collect()
				}
				if err == nil {
					err = c.Noop().Wait()
				}
				if err != nil && !strings.Contains(err.Error(), "EXPUNGEISSUED") {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := clients[0].Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join(mbox, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	newFiles, _ := os.ReadDir(filepath.Join(mbox, "new"))
	onDisk := len(files) + len(newFiles)
	var first string
	for i, c := range clients {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
		if err != nil && onDisk > 0 {
			t.Fatal(err)
		}
		var lines []string
		for _, m := range msgs {
			lines = append(lines, fmt.Sprintf("%d %s", m.UID, m.Envelope.Subject))
		}
		if len(lines) != onDisk {
			t.Fatalf("session %d shows %d messages, %d on disk:\n%s", i, len(lines), onDisk, strings.Join(lines, "\n"))
		}
		view := strings.Join(lines, "\n")
		if i == 0 {
			first = view
		} else if view != first {
			t.Fatalf("views differ:\n%s\n---\n%s", first, view)
		}
	}
}
