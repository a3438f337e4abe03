package queue

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/config"
	"mailsrv/pkg/lmtp"
)

// Transport delivers one message to some recipients: lmtp.Pool, speaking
// to `deliver --lmtp`, is the local one.
type Transport interface {
	Send(ctx context.Context, from string, opts *smtp.MailOptions, rcpts []string, body io.Reader) ([]lmtp.Result, error)
}

// DefaultRetry is the back-off schedule for temporary failures; the last
// step repeats until the message's lifetime ends.
var DefaultRetry = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// Scheduler is `queue run`: it takes messages from incoming/, delivers them,
// retries and bounces. Only one runs per queue (an flock on queue/lock).
type Scheduler struct {
	Q           *Queue
	Cfg         *config.Config
	Local       Transport
	Concurrency int             // messages in delivery at once
	Retry       []time.Duration // back-off schedule; DefaultRetry if nil
	Lifetime    time.Duration   // give up and bounce after this; 5 days if 0
	Rescan      time.Duration   // safety rescan of incoming/; 1 minute if 0

	msgs    map[string]*message
	due     msgHeap
	running int
	done    chan *message
}

// message is the scheduler's in-memory view of one active queue file.
type message struct {
	id      string
	env     *Envelope
	rcpts   []*RcptState // nil until expanded
	next    time.Time
	index   int // in the heap, -1 when not in it
	running bool
	remove  bool      // set by the attempt: nothing is left to do
	retryAt time.Time // for a message not yet expanded
}

// Run schedules until ctx ends, then waits for deliveries in progress.
func (s *Scheduler) Run(ctx context.Context) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if s.Concurrency <= 0 {
		s.Concurrency = 8
	}
	if s.Retry == nil {
		s.Retry = DefaultRetry
	}
	if s.Lifetime == 0 {
		s.Lifetime = 5 * 24 * time.Hour
	}
	if s.Rescan == 0 {
		s.Rescan = time.Minute
	}
	s.msgs = map[string]*message{}
	s.done = make(chan *message)
	wake, flush, err := s.listen(ctx)
	if err != nil {
		return err
	}
	s.cleanTmp()
	s.recover()
	s.scanIncoming()
	timer := time.NewTimer(0)
	rescan := time.NewTicker(s.Rescan)
	defer rescan.Stop()
	for {
		s.dispatch(ctx)
		timer.Reset(s.untilNext())
		select {
		case <-ctx.Done():
			for s.running > 0 {
				s.finish(<-s.done)
			}
			return nil
		case <-wake:
			s.scanIncoming()
		case <-flush:
			s.flushAll()
			s.scanIncoming()
		case m := <-s.done:
			s.finish(m)
		case <-rescan.C:
			s.scanIncoming()
		case <-timer.C:
		}
	}
}

func (s *Scheduler) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Q.Dir, FileLock), os.O_RDWR|os.O_CREATE, 0640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another queue run holds %s: %w", f.Name(), err)
	}
	return func() { _ = f.Close() }, nil
}

// listen reads the trigger FIFO: '+' (a new message) wakes the scheduler,
// 'F' (queue flush) also makes every deferred delivery due now.
func (s *Scheduler) listen(ctx context.Context) (<-chan struct{}, <-chan struct{}, error) {
	// O_RDWR keeps a writer open, so reads block instead of seeing EOF.
	f, err := os.OpenFile(filepath.Join(s.Q.Dir, FileTrigger), os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("trigger: %w", err)
	}
	wake := make(chan struct{}, 1)
	flush := make(chan struct{}, 1)
	context.AfterFunc(ctx, func() { _ = f.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			ch := wake
			if strings.IndexByte(string(buf[:n]), 'F') >= 0 {
				ch = flush
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return wake, flush, nil
}

// cleanTmp removes what an interrupted inject left in tmp/ (qmail's rule:
// older than 36 hours, so no inject still running can own it).
func (s *Scheduler) cleanTmp() {
	ents, err := os.ReadDir(s.Q.path(DirTmp, ""))
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 36*time.Hour {
			_ = os.Remove(s.Q.path(DirTmp, e.Name()))
		}
	}
}

// recover loads the messages a previous run had taken, with their state.
func (s *Scheduler) recover() {
	ents, err := os.ReadDir(s.Q.path(DirActive, ""))
	if err != nil {
		slog.Error("read active", "err", err)
		return
	}
	for _, e := range ents {
		s.load(e.Name())
	}
	states, _ := os.ReadDir(s.Q.path(DirState, ""))
	for _, e := range states {
		if _, ok := s.msgs[e.Name()]; !ok && validID(e.Name()) {
			_ = os.Remove(s.Q.path(DirState, e.Name())) // its message is gone
		}
	}
}

// scanIncoming takes the new messages: incoming/ID is renamed to active/ID.
// The rename needs no fsync: after a crash the file is in one of the two,
// and both are read at start.
func (s *Scheduler) scanIncoming() {
	ents, err := os.ReadDir(s.Q.path(DirIncoming, ""))
	if err != nil {
		slog.Error("read incoming", "err", err)
		return
	}
	for _, e := range ents {
		id := e.Name()
		if !validID(id) {
			continue
		}
		if err := os.Rename(s.Q.path(DirIncoming, id), s.Q.path(DirActive, id)); err != nil {
			slog.Error("take message", "id", id, "err", err)
			continue
		}
		s.load(id)
	}
}

func (s *Scheduler) load(id string) {
	if !validID(id) || s.msgs[id] != nil {
		return
	}
	env, err := s.Q.ReadEnvelopeOf(DirActive, id)
	if err != nil {
		slog.Error("unreadable queue file, left in place", "id", id, "err", err)
		return
	}
	rs, err := s.Q.readState(id)
	if err != nil {
		slog.Error("unreadable state file, starting over", "id", id, "err", err)
		rs = nil
	}
	m := &message{id: id, env: env, rcpts: rs, index: -1}
	m.next = nextDue(m, time.Now())
	s.msgs[id] = m
	s.schedule(m)
}

// nextDue is the earliest time one of m's recipients can be tried.
func nextDue(m *message, now time.Time) time.Time {
	if m.rcpts == nil {
		return maxTime(now, m.retryAt)
	}
	var next time.Time
	for _, r := range m.rcpts {
		if r.Status == StatePending && (next.IsZero() || r.Next.Before(next)) {
			next = r.Next
		}
	}
	return next // zero: nothing to try (only held recipients)
}

func (s *Scheduler) schedule(m *message) {
	if m.next.IsZero() || m.running {
		return
	}
	if m.index >= 0 {
		heap.Fix(&s.due, m.index)
	} else {
		heap.Push(&s.due, m)
	}
}

func (s *Scheduler) untilNext() time.Duration {
	if len(s.due) == 0 || s.running >= s.Concurrency {
		return time.Hour
	}
	return max(time.Until(s.due[0].next), 0)
}

// dispatch starts attempts on due messages, up to the concurrency limit.
func (s *Scheduler) dispatch(ctx context.Context) {
	now := time.Now()
	for len(s.due) > 0 && s.running < s.Concurrency && !s.due[0].next.After(now) {
		m := heap.Pop(&s.due).(*message)
		m.running = true
		s.running++
		go func() {
			s.attempt(ctx, m)
			s.done <- m
		}()
	}
}

func (s *Scheduler) finish(m *message) {
	m.running = false
	s.running--
	if m.remove {
		delete(s.msgs, m.id)
		return
	}
	m.next = nextDue(m, time.Now())
	s.schedule(m)
}

// flushAll makes every pending recipient due now (queue flush).
func (s *Scheduler) flushAll() {
	now := time.Now()
	for _, m := range s.msgs {
		m.retryAt = time.Time{}
		for _, r := range m.rcpts {
			if r.Status == StatePending {
				r.Next = now
			}
		}
		if !m.running {
			m.next = nextDue(m, now)
			s.schedule(m)
		}
	}
}

// msgHeap orders messages by their next attempt.
type msgHeap []*message

func (h msgHeap) Len() int           { return len(h) }
func (h msgHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h msgHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *msgHeap) Push(x any) {
	m := x.(*message)
	m.index = len(*h)
	*h = append(*h, m)
}
func (h *msgHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	*h = old[:len(old)-1]
	m.index = -1
	return m
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
