// Package lineend turns the CRLF line endings of the network (SMTP, LMTP,
// IMAP APPEND) into the LF of Unix files, as mailsrv stores messages: one
// converter for the queue, deliver and the Maildir writer. A bare CR, not
// followed by LF, is kept.
package lineend

import (
	"bytes"
	"io"
)

var cr = []byte{'\r'}

// LFWriter writes to W what it is given with each CRLF turned into LF,
// copying the runs between CRs at once. A CR at the end of one Write is
// held until the next shows whether an LF follows; Flush writes it.
type LFWriter struct {
	W      io.Writer
	heldCR bool
	n      int64 // bytes written to W
}

// Write converts p; it reports len(p) on success.
func (l *LFWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.heldCR && len(p) > 0 {
		l.heldCR = false
		if p[0] != '\n' {
			if err := l.out(cr); err != nil {
				return 0, err
			}
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			if err := l.out(p); err != nil {
				return 0, err
			}
			break
		}
		if err := l.out(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
		if len(p) == 0 {
			l.heldCR = true
			break
		}
		if p[0] != '\n' {
			if err := l.out(cr); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (l *LFWriter) out(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	k, err := l.W.Write(p)
	l.n += int64(k)
	return err
}

// Flush writes a CR held at the very end of the input.
func (l *LFWriter) Flush() error {
	if !l.heldCR {
		return nil
	}
	l.heldCR = false
	return l.out(cr)
}

// Written is the number of bytes written to W so far: the converted size.
func (l *LFWriter) Written() int64 { return l.n }
