package imap

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/fsnotify/fsnotify"

	"mailsrv/pkg/maildir"
)

// noPolling makes IDLE's polls too rare to matter: a change reported
// during the test came from inotify.
func noPolling(s *Server) {
	s.PollInterval = time.Hour
	s.WatchPollInterval = time.Hour
}

// idleOn starts IDLE on cl and waits for the continuation.
func idleOn(t *testing.T, cl *client) {
	t.Helper()
	cl.send("I IDLE\r\n")
	if l := cl.line(); l != "+ idling\r\n" {
		t.Fatalf("idle: %q", l)
	}
}

func idleDone(t *testing.T, cl *client) {
	t.Helper()
	cl.send("DONE\r\n")
	if r := cl.until("I"); !strings.HasSuffix(r, "I OK IDLE completed\r\n") {
		t.Fatalf("done: %q", r)
	}
}

// With polling at once an hour, a delivery, another session's flag and
// keyword changes and its expunge reach an idling session: inotify told
// it.
func TestIdleInotify(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 2)
	addr := testServer(t, cfg, noPolling)
	a, b := dial(t, addr), dial(t, addr)
	a.login()
	b.login()
	selectInbox(t, a)
	selectInbox(t, b)
	idleOn(t, a)

	deliverN(t, mbox, 1)
	if l := a.line(); l != "* 3 EXISTS\r\n" {
		t.Fatalf("delivery during IDLE: %q", l)
	}
	if l := a.line(); l != "* 3 RECENT\r\n" { // a's SELECT claimed the first two
		t.Fatalf("recent: %q", l)
	}
	b.send("1 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n")
	b.until("1")
	if l := a.line(); l != "* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n" {
		t.Fatalf("flag change during IDLE: %q", l)
	}
	b.send("2 STORE 1 +FLAGS.SILENT ($Forwarded)\r\n")
	b.until("2")
	if l := a.line(); !strings.HasPrefix(l, "* 1 FETCH (FLAGS ($Forwarded") {
		t.Fatalf("keyword during IDLE: %q", l)
	}
	b.send("3 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n4 EXPUNGE\r\n")
	b.until("4")
	for {
		l := a.line()
		if l == "* 1 EXPUNGE\r\n" {
			break
		}
		if !strings.HasPrefix(l, "* 1 FETCH (FLAGS ($Forwarded \\Deleted") {
			t.Fatalf("expunge during IDLE: %q", l)
		}
	}
	idleDone(t, a)
}

// failingWatcher stands for a process out of inotify instances.
func failingWatcher() (*fsnotify.Watcher, error) {
	return nil, errors.New("too many open files")
}

// closedWatcher makes an instance on which every Add fails, as when the
// user's watches are used up.
func closedWatcher() (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return w, w.Close()
}

// Without inotify (no instance, or no watch), IDLE logs one line and
// polls: changes still arrive.
func TestIdleFallbackPolls(t *testing.T) {
	for name, mk := range map[string]func() (*fsnotify.Watcher, error){
		"NewWatcher fails": failingWatcher,
		"Add fails":        closedWatcher,
	} {
		t.Run(name, func(t *testing.T) {
			cfg, mbox := testRoot(t)
			deliverN(t, mbox, 1)
			var logBuf syncBuffer
			addr := testServer(t, cfg, func(s *Server) {
				s.hub.newWatcher = mk
				s.WatchPollInterval = time.Hour // unused: polling is PollInterval
				s.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
			})
			a, b := dial(t, addr), dial(t, addr)
			a.login()
			b.login()
			selectInbox(t, a)
			selectInbox(t, b)
			idleOn(t, a)
			deliverN(t, mbox, 1)
			if l := a.line(); l != "* 2 EXISTS\r\n" {
				t.Fatalf("delivery during IDLE: %q", l)
			}
			a.line() // RECENT
			b.send("1 STORE 1 +FLAGS.SILENT (\\Seen)\r\n")
			b.until("1")
			if l := a.line(); !strings.HasPrefix(l, "* 1 FETCH (FLAGS (\\Seen") {
				t.Fatalf("flag change during IDLE: %q", l)
			}
			idleDone(t, a)
			if n := strings.Count(logBuf.String(), "IDLE: no inotify, polling"); n != 1 {
				t.Errorf("%d log lines for one IDLE:\n%s", n, logBuf.String())
			}
			if s := inotifyFDs(t); s != 0 {
				t.Errorf("%d inotify descriptors left open", s)
			}
		})
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A burst of deliveries makes a few rescans, not one per message: the
// events that come while a rescan runs (held here until the burst is
// over) make one more.
func TestIdleCoalescesBursts(t *testing.T) {
	cfg, mbox := testRoot(t)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	var syncs atomic.Int32
	held, release := make(chan struct{}), make(chan struct{})
	addr := testServer(t, cfg, func(s *Server) {
		noPolling(s)
		s.idleHook = func() {
			if syncs.Add(1) == 2 { // the first after an event
				close(held)
				<-release
			}
		}
	})
	a := dial(t, addr)
	a.login()
	selectInbox(t, a)
	idleOn(t, a)
	deliverN(t, mbox, 1)
	<-held
	deliverN(t, mbox, 499)
	close(release)
	for {
		l := a.line()
		if l == "* 500 EXISTS\r\n" {
			break
		}
		if !strings.HasSuffix(l, " RECENT\r\n") && !strings.HasSuffix(l, " EXISTS\r\n") {
			t.Fatalf("got %q", l)
		}
	}
	idleDone(t, a)
	// The initial look, the held one, and one for everything that
	// happened meanwhile (the deliveries, and this session's own moves
	// from new/ to cur/).
	if n := syncs.Load(); n > 3 {
		t.Errorf("500 deliveries made %d rescans", n)
	}
}

// inotifyFDs counts this process's inotify instances.
func inotifyFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// Sessions in IDLE share one inotify instance; many IDLE start/stop cycles
// leave no goroutine, watch or instance behind.
func TestIdleNoLeaks(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 1)
	var srv *Server
	addr := testServer(t, cfg, func(s *Server) { noPolling(s); srv = s })
	sessions := make([]*client, 3)
	for i := range sessions {
		sessions[i] = dial(t, addr)
		sessions[i].login()
		selectInbox(t, sessions[i])
	}
	sessions[2].send("C CREATE Other\r\nS SELECT Other\r\n")
	sessions[2].until("S")
	before := runtime.NumGoroutine()
	for i := range 200 {
		for _, cl := range sessions {
			idleOn(t, cl)
		}
		if i == 0 {
			if n := inotifyFDs(t); n != 1 {
				t.Fatalf("%d inotify instances for 3 sessions in IDLE", n)
			}
			srv.hub.mu.Lock()
			n := len(srv.hub.dirs)
			srv.hub.mu.Unlock()
			if n != 6 { // INBOX and Other: new/, cur/ and the folder
				t.Fatalf("%d watched directories, want 6", n)
			}
		}
		for _, cl := range sessions {
			idleDone(t, cl)
		}
	}
	if n := inotifyFDs(t); n != 0 {
		t.Errorf("%d inotify instances after IDLE", n)
	}
	srv.hub.mu.Lock()
	if srv.hub.w != nil || len(srv.hub.dirs) != 0 {
		t.Errorf("watcher left: %v %v", srv.hub.w, srv.hub.dirs)
	}
	srv.hub.mu.Unlock()
	// A goroutine that has finished its work may take a moment to exit.
	for i := 0; runtime.NumGoroutine() > before && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after 200 IDLE cycles\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// go-imap v2's client in IDLE hears of a delivery at once, polls set to
// an hour.
func TestGoIMAPIdleInotify(t *testing.T) {
	cfg, mbox := testRoot(t)
	deliverN(t, mbox, 1)
	addr := testServer(t, cfg, noPolling)
	exists := make(chan uint32, 10)
	c := goClient(t, addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
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
	deliverN(t, mbox, 1)
	select {
	case n := <-exists:
		if n != 2 {
			t.Errorf("EXISTS %d, want 2", n)
		}
	case <-time.After(10 * time.Second): // a hang guard: polling would take an hour
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
