package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// The queue's subdirectories and files; mailsrv-queue(5) describes the
// states they stand for and the renames between them.
const (
	DirTmp      = "tmp"      // inject writes here; never read by the scheduler
	DirIncoming = "incoming" // complete, fsynced, not yet seen by the scheduler
	DirActive   = "active"   // taken by the scheduler
	DirState    = "state"    // per-recipient delivery state of active messages
	FileTrigger = "trigger"  // FIFO: a byte here wakes the scheduler
	FileLock    = "lock"     // flock held by the one running scheduler
)

// Queue is one queue directory.
type Queue struct {
	Dir string
}

// Open returns the queue at dir, checking that it was created.
func Open(dir string) (*Queue, error) {
	if _, err := os.Stat(filepath.Join(dir, DirIncoming)); err != nil {
		return nil, fmt.Errorf("queue %s: %w (run mailctl init)", dir, err)
	}
	return &Queue{Dir: dir}, nil
}

// Create makes the queue directory and its parts. It is idempotent.
func Create(dir string) error {
	for _, d := range []string{dir, DirTmp, DirIncoming, DirActive, DirState} {
		p := d
		if d != dir {
			p = filepath.Join(dir, d)
		}
		if err := os.MkdirAll(p, 0750); err != nil {
			return err
		}
	}
	fifo := filepath.Join(dir, FileTrigger)
	if err := syscall.Mkfifo(fifo, 0622); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mkfifo %s: %w", fifo, err)
	} else if err == nil {
		// Past the umask: whoever may inject may poke.
		return os.Chmod(fifo, 0622)
	}
	return nil
}

func (q *Queue) path(sub, id string) string { return filepath.Join(q.Dir, sub, id) }

var idSeq atomic.Uint64

// newID returns a queue id, unique on this host: the time in nanoseconds,
// the pid and a counter. Ids sort by arrival.
func newID(now time.Time) string {
	return strconv.FormatInt(now.UnixNano(), 10) + "." + strconv.Itoa(os.Getpid()) + "." +
		strconv.FormatUint(idSeq.Add(1), 10)
}

// validID refuses names that could escape the queue directory.
func validID(id string) bool {
	if id == "" || id[0] == '.' || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

// Poke wakes the scheduler, if one runs: it writes one byte to the trigger
// FIFO without blocking. A scheduler that is not running will scan the queue
// when it starts, so a failed poke loses nothing.
func (q *Queue) Poke(b byte) {
	f, err := os.OpenFile(filepath.Join(q.Dir, FileTrigger), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	_, _ = f.Write([]byte{b})
	_ = f.Close()
}
