package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// msgState is what a session sees of one message at the end.
type msgState struct {
	id    string // Message-ID
	flags string
}

// TestIMAPDManySessionsConverge is the concurrency test of the imapd
// issue, with go-imap's client: 20 sessions on one mailbox (half on one
// imapd --listen process, half each in its own process under tcpserver)
// while deliver adds 500 messages, three sessions change flags and one
// expunges. At the end every session, and a new one, sees the same UIDs,
// Message-IDs and flags; no UID names two messages; nothing delivered is
// missing but what was expunged.
func TestIMAPDManySessionsConverge(t *testing.T) {
	const sessions, deliveries = 20, 500
	r := newRoot(t)
	box := r.mailbox("demo")
	_, listenAddr := r.startIMAPD()
	tcpAddr := tcpserve(t, nil, bin(t, "imapd"), "--root", r.Dir)
	deliverBin := bin(t, "deliver")

	clients := make([]*imapclient.Client, sessions)
	for i := range clients {
		addr := listenAddr
		if i%2 == 1 {
			addr = tcpAddr
		}
		clients[i] = imapLogin(t, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var delivering sync.WaitGroup
	errs := make(chan error, 64)
	next := make(chan int, deliveries)
	for n := range deliveries {
		next <- n
	}
	close(next)
	for range 4 {
		delivering.Add(1)
		go func() {
			defer delivering.Done()
			for n := range next {
				msg := fmt.Sprintf("Message-ID: <%d@concurrency.test>\nSubject: message %d\n\nbody %d\n", n, n, n)
				cmd := exec.CommandContext(ctx, deliverBin, "-m", box)
				cmd.Stdin = strings.NewReader(msg)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("deliver %d: %v %s", n, err, out)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { delivering.Wait(); close(done) }()

	var workers sync.WaitGroup
	var expungedMu sync.Mutex
	var expunged []string // Message-IDs
	for i, c := range clients {
		workers.Add(1)
		go func() {
			defer workers.Done()
			var err error
			switch {
			case i < 3:
				err = flagger(c, done, deliveries)
			case i == 3:
				var ids []string
				ids, err = expunger(c, done, deliveries)
				expungedMu.Lock()
				expunged = append(expunged, ids...)
				expungedMu.Unlock()
			default:
				err = idler(c, done)
			}
			if err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
			}
		}()
	}
	workers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	want := finalState(t, imapLogin(t, listenAddr))
	for i, c := range clients {
		if got := finalState(t, c); !mapsEqual(got, want) {
			t.Errorf("session %d sees %d messages, a new session %d; first difference: %s", i, len(got), len(want), firstDiff(got, want))
		}
	}
	ids := map[string]imap.UID{}
	for uid, m := range want {
		if prev, dup := ids[m.id]; dup {
			t.Errorf("%s has UIDs %d and %d", m.id, prev, uid)
		}
		ids[m.id] = uid
	}
	for _, id := range expunged {
		if _, ok := ids[id]; ok {
			t.Errorf("%s expunged but still there", id)
		}
		ids[id] = 0
	}
	for n := range deliveries {
		if _, ok := ids[fmt.Sprintf("<%d@concurrency.test>", n)]; !ok {
			t.Errorf("message %d lost", n)
		}
	}
	if !t.Failed() {
		t.Logf("%d delivered, %d expunged, %d left, all %d sessions agree", deliveries, len(expunged), len(want), sessions)
	}
}

func imapLogin(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login("demo@example.test", DemoPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// flagger sets and clears flags on random UIDs until done.
func flagger(c *imapclient.Client, done <-chan struct{}, maxUID int) error {
	flags := []imap.Flag{imap.FlagFlagged, imap.FlagSeen, imap.FlagAnswered}
	for {
		select {
		case <-done:
			return nil
		default:
		}
		op := imap.StoreFlagsAdd
		if rand.IntN(3) == 0 {
			op = imap.StoreFlagsDel
		}
		uid := imap.UID(1 + rand.IntN(maxUID))
		store := &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{flags[rand.IntN(len(flags))]}}
		if err := c.Store(imap.UIDSetNum(uid), store, nil).Close(); expungedMeanwhile(c, err) != nil {
			return fmt.Errorf("store %d: %w", uid, err)
		}
	}
}

// expungedMeanwhile forgives NO [EXPUNGEISSUED] (RFC 5530: another
// session expunged a message this one still saw; the client is to NOOP)
// and catches up with a NOOP.
func expungedMeanwhile(c *imapclient.Client, err error) error {
	if err == nil || !strings.Contains(err.Error(), "EXPUNGEISSUED") {
		return err
	}
	return c.Noop().Wait()
}

// expunger deletes random messages one by one until done and returns
// their Message-IDs.
func expunger(c *imapclient.Client, done <-chan struct{}, maxUID int) ([]string, error) {
	var ids []string
	for {
		select {
		case <-done:
			return ids, nil
		case <-time.After(20 * time.Millisecond):
		}
		uid := imap.UID(1 + rand.IntN(maxUID))
		msgs, err := c.Fetch(imap.UIDSetNum(uid), messageIDFetch).Collect()
		if err != nil {
			return ids, fmt.Errorf("fetch %d: %w", uid, err)
		}
		if len(msgs) == 0 {
			continue
		}
		id := messageID(msgs[0])
		store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
		if err := c.Store(imap.UIDSetNum(uid), store, nil).Close(); err != nil {
			return ids, fmt.Errorf("store %d: %w", uid, err)
		}
		if err := c.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
			return ids, fmt.Errorf("expunge %d: %w", uid, err)
		}
		ids = append(ids, id)
	}
}

// idler polls with NOOP until done.
func idler(c *imapclient.Client, done <-chan struct{}) error {
	for {
		select {
		case <-done:
			return nil
		case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
		}
		if err := c.Noop().Wait(); err != nil {
			return err
		}
	}
}

var messageIDFetch = &imap.FetchOptions{UID: true, Flags: true,
	BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}}}

func messageID(m *imapclient.FetchMessageBuffer) string {
	for _, b := range m.BodySection {
		_, v, _ := strings.Cut(string(b.Bytes), ":")
		return strings.TrimSpace(v)
	}
	return ""
}

// finalState brings the session up to date and reads every message.
func finalState(t *testing.T, c *imapclient.Client) map[imap.UID]msgState {
	t.Helper()
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, messageIDFetch).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID]msgState{}
	for _, m := range msgs {
		var fl []string
		for _, f := range m.Flags {
			if f != `\Recent` { // one session's own (RFC 3501 2.3.2)
				fl = append(fl, string(f))
			}
		}
		slices.Sort(fl)
		out[m.UID] = msgState{id: messageID(m), flags: strings.Join(fl, " ")}
	}
	return out
}

func mapsEqual(a, b map[imap.UID]msgState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func firstDiff(got, want map[imap.UID]msgState) string {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return fmt.Sprintf("UID %d: %+v, want %+v", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("UID %d: %+v not in the new session", k, v)
		}
	}
	return "none"
}

// TestIMAPDUIDsSurviveKill kills imapd (SIGKILL) at random moments while
// a session appends, flags and expunges and deliver adds messages: after
// each kill a new imapd serves the mailbox at once, with the same
// UIDVALIDITY, every message keeping the UID it had, and no UID twice.
func TestIMAPDUIDsSurviveKill(t *testing.T) {
	r := newRoot(t)
	box := r.mailbox("demo")
	deliverBin := bin(t, "deliver")
	known := map[string]imap.UID{} // Message-ID → UID, across kills
	var validity uint32
	n := 0
	for round := range 8 {
		p, addr := r.startIMAPD()
		c := imapLogin(t, addr)
		if round == 0 {
			validity = uidValidity(t, c)
		}
		checkKnown(t, c, known, validity, round)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // a client's changes, until the server dies
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := fmt.Sprintf("<kill-%d-%d@concurrency.test>", round, i)
				if imapAppend(c, "Message-ID: "+n+"\r\nSubject: x\r\n\r\nx\r\n") != nil {
					return
				}
				store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
				if c.Store(imap.UIDSetNum(imap.UID(1+rand.IntN(40))), store, nil).Close() != nil {
					return
				}
			}
		}()
		go func() { // deliveries from outside
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cmd := exec.Command(deliverBin, "-m", box)
				cmd.Stdin = strings.NewReader(fmt.Sprintf("Message-ID: <deliver-%d-%d@concurrency.test>\n\nx\n", round, i))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("deliver: %v %s", err, out)
					return
				}
			}
		}()
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		p.Kill()
		close(stop)
		_ = c.Close()
		wg.Wait()
		n++
	}
	_, addr := r.startIMAPD()
	checkKnown(t, imapLogin(t, addr), known, validity, n)
	if len(known) < 20 {
		t.Fatalf("only %d messages seen: the kills came before any work", len(known))
	}
	t.Logf("%d messages kept their UIDs over %d kills", len(known), n)
}

func imapAppend(c *imapclient.Client, msg string) error {
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := cmd.Write([]byte(msg)); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// checkKnown reads every message and checks it against what was seen
// before (same UID) and the UIDVALIDITY; it records the new ones.
func checkKnown(t *testing.T, c *imapclient.Client, known map[string]imap.UID, validity uint32, round int) {
	t.Helper()
	if v := uidValidity(t, c); v != validity {
		t.Fatalf("round %d: UIDVALIDITY %d, was %d", round, v, validity)
	}
	state := finalState(t, c)
	seen := map[string]imap.UID{}
	for uid, m := range state {
		if prev, ok := seen[m.id]; ok {
			t.Fatalf("round %d: %s has UIDs %d and %d", round, m.id, prev, uid)
		}
		seen[m.id] = uid
		if prev, ok := known[m.id]; ok && prev != uid {
			t.Fatalf("round %d: %s had UID %d, now %d", round, m.id, prev, uid)
		}
		known[m.id] = uid
	}
}

// uidValidity selects INBOX again and returns its UIDVALIDITY.
func uidValidity(t *testing.T, c *imapclient.Client) uint32 {
	t.Helper()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return sel.UIDValidity
}
