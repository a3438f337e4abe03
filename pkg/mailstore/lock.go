package mailstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Locks are files made by link(2), which is atomic on NFS as on a local
// disk, unlike O_EXCL on old NFS or flock across hosts. The file names its
// holder (host, pid). A lock whose holder was on this host and is gone (a
// process killed while it held it) is broken at once; any lock older than
// staleLock is taken to belong to a dead process on another host and is
// broken too: the holder keeps a lock for milliseconds, for at most one
// append or rewrite.
const (
	staleLock   = 2 * time.Minute
	lockTimeout = 30 * time.Second
)

// ErrLockTimeout is returned when a lock could not be taken in time.
var ErrLockTimeout = errors.New("mailstore: lock timeout")

var hostname, _ = os.Hostname()

func unique() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hostname + "." + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(r[:])
}

// holderGone reports whether the lock at path, with content b
// ("PATH.HOST.PID.RANDOM TIME"), was taken by a process of this host that
// no longer exists.
func holderGone(path string, b []byte) bool {
	name, _, _ := strings.Cut(string(b), " ")
	rest, ok := strings.CutPrefix(name, path+"."+hostname+".")
	if !ok {
		return false
	}
	pidStr, _, ok := strings.Cut(rest, ".")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// lock takes the lock file path, waiting up to lockTimeout, and returns the
// function that releases it.
func lock(path string) (func() error, error) { return lockWithin(path, lockTimeout) }

// lockWithin is lock waiting up to timeout.
func lockWithin(path string, timeout time.Duration) (func() error, error) {
	tmp := path + "." + unique()
	content := fmt.Sprintf("%s %d\n", tmp, time.Now().Unix())
	if err := os.WriteFile(tmp, []byte(content), 0600); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	defer os.Remove(tmp)
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := os.Link(tmp, path)
		if err == nil || linkedTwice(tmp) {
			return func() error { return os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		breakStale(path)
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s", ErrLockTimeout, path)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// linkedTwice covers NFS, where link may report failure after it succeeded
// (the reply was lost): our temporary file then has two links.
func linkedTwice(tmp string) bool {
	fi, err := os.Stat(tmp)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 2
}

// breakStale removes a lock left by a dead holder. It renames the lock
// away first, so that of two processes breaking it, one wins; if what it
// moved is not the file it judged (a lock taken since by a live process),
// it gives it back.
func breakStale(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	fi, err := f.Stat()
	b := make([]byte, 512)
	n, _ := f.Read(b)
	_ = f.Close()
	if err != nil || time.Since(fi.ModTime()) < staleLock && !holderGone(path, b[:n]) {
		return
	}
	aside := path + ".stale." + unique()
	if os.Rename(path, aside) != nil {
		return
	}
	if moved, err := os.Stat(aside); err == nil && !os.SameFile(moved, fi) {
		_ = os.Link(aside, path)
	}
	_ = os.Remove(aside)
}
