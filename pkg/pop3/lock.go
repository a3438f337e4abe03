package pop3

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LockFile is the name of the POP3 session lock inside a Maildir.
const LockFile = "pop3.lock"

// ErrInUse is returned by Lock when another live session holds the lock.
var ErrInUse = errors.New("mailbox in use by another POP3 session")

var lockHost = func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, h)
}()

// MailboxLock is the one-session-per-mailbox lock of RFC 1939 section 8
// ("exclusive-access lock on the maildrop"), shared by every pop3d process
// on every host that mounts the store. It is made the way DESIGN.md asks for
// shared filesystems: a unique file is written, then link()ed to pop3.lock,
// which fails if the lock exists. The holder rewrites the file every
// Heartbeat, so a lock whose holder died (kill -9, a lost host) goes stale
// after Stale with no heartbeat, measured against the filesystem's own
// clock; on the same host a lock whose process is gone is stale at once.
type MailboxLock struct {
	path  string
	token string // "pid host time random": this holder's content
	f     *os.File
	stop  chan struct{}
	done  sync.WaitGroup
	mu    sync.Mutex
}

// Lock timing.
var (
	Heartbeat = time.Minute
	Stale     = 5 * time.Minute
)

// Lock takes the POP3 lock of the Maildir dir, breaking a stale one. It
// returns ErrInUse when a live session holds it.
func Lock(dir string) (*MailboxLock, error) {
	path := filepath.Join(dir, LockFile)
	var r [8]byte
	_, _ = rand.Read(r[:])
	token := fmt.Sprintf("%d %s %d %s\n", os.Getpid(), lockHost, time.Now().Unix(), hex.EncodeToString(r[:]))
	tmp := filepath.Join(dir, ".pop3.lock."+hex.EncodeToString(r[:]))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_, err = f.WriteString(token)
	for tries := 0; err == nil && tries < 3; tries++ {
		if err = os.Link(tmp, path); err == nil || !errors.Is(err, os.ErrExist) {
			break
		}
		var broke bool
		if broke, err = breakStale(path, tmp); err == nil && !broke {
			err = ErrInUse
		}
	}
	if rerr := os.Remove(tmp); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, ErrInUse) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	held.Store(token, true)
	l := &MailboxLock{path: path, token: token, f: f, stop: make(chan struct{})}
	l.done.Add(1)
	go l.heartbeat()
	return l, nil
}

// breakStale removes the lock at path if its holder is gone. ours is a file
// this process just wrote, whose mtime is "now" by the filesystem's clock.
// The lock is renamed aside first and checked again, so that two processes
// breaking the same stale lock cannot remove a fresh one.
func breakStale(path, ours string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	now, err := os.Stat(ours)
	if err != nil {
		return false, err
	}
	content, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if !holderGone(string(content)) && now.ModTime().Sub(fi.ModTime()) < Stale {
		return false, nil
	}
	aside := ours + ".stale"
	if err := os.Rename(path, aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	moved, err := os.Stat(aside)
	if err == nil && !os.SameFile(moved, fi) {
		// Someone broke it first and a new session has since locked:
		// give the fresh lock back.
		err = os.Link(aside, path)
		_ = os.Remove(aside)
		if err == nil || errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, os.Remove(aside)
}

// held is the set of lock tokens this process holds, so that a lock naming
// this very pid but none of its sessions (left by an earlier process that
// had the same pid, as happens in containers) is known to be stale.
var held sync.Map

// holderGone reports whether a lock's content names a process of this host
// that no longer exists, or this process when it does not hold that lock.
func holderGone(content string) bool {
	f := strings.Fields(content)
	if len(f) < 2 || f[1] != lockHost {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		_, ours := held.Load(content)
		return !ours
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// heartbeat rewrites the lock file now and then, which sets its mtime by
// the filesystem's clock.
func (l *MailboxLock) heartbeat() {
	defer l.done.Done()
	t := time.NewTicker(Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			_, _ = l.f.WriteAt([]byte(l.token), 0)
			l.mu.Unlock()
		}
	}
}

// Modified returns the lock file's mtime, the filesystem's "now" at the
// time the lock was taken.
func (l *MailboxLock) Modified() (time.Time, error) {
	fi, err := l.f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Unlock releases the lock, if it is still ours.
func (l *MailboxLock) Unlock() error {
	close(l.stop)
	l.done.Wait()
	content, err := os.ReadFile(l.path)
	if err == nil && string(content) == l.token {
		err = os.Remove(l.path)
	}
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	held.Delete(l.token)
	return err
}
