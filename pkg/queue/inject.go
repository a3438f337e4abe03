package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"mailsrv/pkg/lineend"
	"mailsrv/pkg/safefile"
)

// Inject writes env and msg into the queue as one file and commits it: the
// file is written in tmp/, fsynced, renamed into incoming/, and incoming/ is
// fsynced; only then is the id returned, and the scheduler poked. CRLF line
// endings in msg are stored as LF. If maxSize > 0, a message larger than
// that is refused (permanently).
func (q *Queue) Inject(ctx context.Context, env *Envelope, msg io.Reader) (string, error) {
	return q.inject(env, msg, 0)
}

// InjectLimit is Inject with a size limit in bytes.
func (q *Queue) InjectLimit(env *Envelope, msg io.Reader, maxSize int64) (string, error) {
	return q.inject(env, msg, maxSize)
}

func (q *Queue) inject(env *Envelope, msg io.Reader, maxSize int64) (string, error) {
	if len(env.To) == 0 {
		return "", &Error{Msg: "no recipients"}
	}
	now := time.Now()
	if env.Received.IsZero() {
		env.Received = now
	}
	id := newID(now)
	tmp := q.path(DirTmp, id)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0640)
	if err != nil {
		return "", ioError("create", err)
	}
	w := bufio.NewWriterSize(f, 64*1024)
	_, err = env.WriteTo(w)
	if err == nil {
		err = copyLF(w, msg, maxSize)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, q.path(DirIncoming, id))
	}
	if err != nil {
		_ = os.Remove(tmp)
		var qe *Error
		if errors.As(err, &qe) {
			return "", qe
		}
		return "", ioError("write", err)
	}
	if err := safefile.SyncDir(q.path(DirIncoming, "")); err != nil {
		// The rename may or may not survive a crash: the client must
		// not be told yes. Take the file back out if we can.
		_ = os.Remove(q.path(DirIncoming, id))
		return "", ioError("fsync", err)
	}
	q.Poke('+')
	return id, nil
}

// ioError turns a file system failure into a temporary queue error, with
// the SMTP code for a full disk when that is the cause.
func ioError(op string, err error) *Error {
	e := &Error{Temporary: true, Code: 451, Msg: "queue " + op + " failed: " + err.Error()}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		e.Code, e.Msg = 452, "insufficient system storage"
	}
	return e
}

// ErrTooBig is the refusal of a message over the size limit.
var ErrTooBig = &Error{Code: 552, Msg: "message exceeds fixed maximum message size"}

// copyLF copies src to dst, replacing each CRLF by LF, and fails with
// ErrTooBig once more than maxSize bytes (0: no limit) have been written.
func copyLF(dst io.Writer, src io.Reader, maxSize int64) error {
	lf := &lineend.LFWriter{W: dst}
	buf := make([]byte, 32*1024)
	for {
		k, rerr := src.Read(buf)
		if _, err := lf.Write(buf[:k]); err != nil {
			return err
		}
		if maxSize > 0 && lf.Written() > maxSize {
			return ErrTooBig
		}
		if errors.Is(rerr, io.EOF) {
			return lf.Flush()
		}
		if rerr != nil {
			return fmt.Errorf("reading message: %w", rerr)
		}
	}
}
