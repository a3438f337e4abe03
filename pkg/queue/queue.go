// Package queue owns the mail queue: a directory of files, one per message,
// each holding the envelope and the message, moved between subdirectories
// by atomic renames (see mailsrv-queue(5) for the states). It provides the
// injection path (Inject, and the Injector implementations that smtpd uses
// to reach a separate `queue inject` process), the scheduler behind
// `queue run`, and the listing behind `queue list`.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Error is a refusal by the queue or by a filter in front of it. Temporary
// errors mean "try again later" (SMTP 4xx, exit 75); permanent ones carry a
// reason to show the sender (SMTP 5xx, exit 65).
type Error struct {
	Temporary bool
	Code      int    // SMTP code to answer with, 0 for the default (451 or 554)
	Msg       string // reason, safe to show to the client
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	return fmt.Sprintf("queue: %s failure: %s", kind, e.Msg)
}

// IsTemporary reports whether err is a temporary failure. Errors that are
// not an *Error (I/O errors, a crashed injector) count as temporary: a
// fault that may pass is never turned into a refusal.
func IsTemporary(err error) bool {
	var qe *Error
	if errors.As(err, &qe) {
		return qe.Temporary
	}
	return err != nil
}

// Injector puts one message into the queue. The message is read from msg
// (line endings LF or CRLF; the queue stores LF). Inject returns the queue
// id only once the message is durably queued.
type Injector interface {
	Inject(ctx context.Context, env *Envelope, msg io.Reader) (id string, err error)
}

// Writable reports whether this process may write the queue itself. When
// it may, it already holds the queue's rights: handing each message to a
// `queue inject` child would add a process hop without separating any
// privilege, so smtpd and queue run then inject in-process. In a
// privilege-separated installation the network daemon cannot write the
// queue, and this is false.
func (q *Queue) Writable() bool {
	const w = 2 // W_OK
	return syscall.Access(q.path(DirTmp, ""), w) == nil && syscall.Access(q.path(DirIncoming, ""), w) == nil
}
