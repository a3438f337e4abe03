// Package safefile writes files so that a reader sees either the old
// contents or the new, never a part, and so that a write reported as done
// survives a crash: write to a temporary name in the same directory, fsync
// the file, rename it over the target, fsync the directory.
package safefile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

var seq atomic.Uint64

// WriteFile replaces path with data, durably and atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileOwned(path, data, perm, -1, -1)
}

// WriteFileOwned is WriteFile giving the new file an owner and group
// (-1 keeps the process's) before it replaces the old one, so that a
// reader never finds it with the wrong ones: mailctl, run by root, keeps
// etc/users readable by the group mailsrv-mail.
func WriteFileOwned(path string, data []byte, perm os.FileMode, uid, gid int) error {
	return writeOwned(path, perm, uid, gid, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom is WriteFile for contents that write produces as it goes,
// through a buffer, without holding them in memory: a first listing of a
// large folder writes its UID list so (megabytes).
func WriteFrom(path string, perm os.FileMode, write func(io.Writer) error) error {
	return writeOwned(path, perm, -1, -1, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func writeOwned(path string, perm os.FileMode, uid, gid int, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp."+
		strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(seq.Add(1), 10)+"."+
		strconv.FormatInt(time.Now().UnixNano(), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if uid >= 0 || gid >= 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making the renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
