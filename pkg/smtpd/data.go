package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// receivedPrefix starts a trace header (RFC 5321 section 4.4), compared
// without regard to case.
const receivedPrefix = "received:"

// lineFilter checks the message data as go-smtp hands it over (dot-
// unstuffed for DATA, raw for BDAT, CRLF line endings in both) and writes
// it to w with LF line endings, the form the queue stores.
//
// It refuses a CR or LF that is not part of a CRLF pair, a line longer
// than maxLine octets with its CRLF, and more than maxHops Received
// headers. After the first fault it writes nothing more but goes on
// accepting input, so that the client's data is consumed and the reply
// comes after the whole message, keeping the session in step.
type lineFilter struct {
	w       io.Writer
	maxLine int // longest line, CRLF included (RFC 5321 section 4.5.3.1.6)
	maxHops int // most Received headers allowed

	size    int64  // octets read, as sent
	cr      bool   // the last octet was a CR, not yet written
	lineLen int    // octets of the current line so far, CRLF excluded
	body    bool   // past the empty line that ends the header section
	prefix  []byte // first octets of the current line, up to len(receivedPrefix)
	hops    int    // Received headers seen
	fault   error  // first protocol fault, a *smtp.SMTPError
	werr    error  // first error writing to w
	buf     []byte
}

func newLineFilter(w io.Writer, maxLine, maxHops int) *lineFilter {
	return &lineFilter{w: w, maxLine: maxLine, maxHops: maxHops}
}

// Write never fails for a protocol fault (see lineFilter); it fails only
// when w does. It works on runs of ordinary octets between line breaks, found
// with bytes.IndexByte, rather than octet by octet.
func (f *lineFilter) Write(p []byte) (int, error) {
	n := len(p)
	f.size += int64(n)
	if f.fault != nil {
		return n, nil
	}
	f.buf = f.buf[:0]
	for len(p) > 0 && f.fault == nil {
		if f.cr { // the previous octet was a CR: only LF may follow
			f.cr = false
			if p[0] != '\n' {
				f.fault = errBareNewline
				break
			}
			f.endLine()
			p = p[1:]
			continue
		}
		i := breakAt(p)
		if !f.text(p[:i]) || i == len(p) {
			break
		}
		if p[i] == '\n' {
			f.fault = errBareNewline
			break
		}
		f.cr = true
		p = p[i+1:]
	}
	if err := f.flush(); err != nil {
		return 0, err
	}
	return n, nil
}

// breakAt returns the index of the first CR or LF in p, or len(p).
func breakAt(p []byte) int {
	end := len(p)
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		end = i
	}
	if i := bytes.IndexByte(p[:end], '\r'); i >= 0 {
		end = i
	}
	return end
}

// text takes a run of octets with no CR or LF in it; it returns false after
// a fault.
func (f *lineFilter) text(run []byte) bool {
	f.lineLen += len(run)
	if f.maxLine > 0 && f.lineLen+2 > f.maxLine {
		f.fault = errLineTooLong
		return false
	}
	if !f.body && len(f.prefix) < len(receivedPrefix) {
		f.prefix = append(f.prefix, run[:min(len(run), len(receivedPrefix)-len(f.prefix))]...)
	}
	f.buf = append(f.buf, run...)
	return true
}

// endLine is called at each CRLF.
func (f *lineFilter) endLine() bool {
	f.buf = append(f.buf, '\n')
	if !f.body {
		switch {
		case f.lineLen == 0:
			f.body = true
		case bytes.EqualFold(f.prefix, []byte(receivedPrefix)):
			f.hops++
			if f.maxHops > 0 && f.hops > f.maxHops {
				f.fault = errLoop
				return false
			}
		}
	}
	f.lineLen = 0
	f.prefix = f.prefix[:0]
	return true
}

func (f *lineFilter) flush() error {
	if f.werr != nil || len(f.buf) == 0 {
		return f.werr
	}
	_, f.werr = f.w.Write(f.buf)
	return f.werr
}

// Close ends the message. A CR as the last octet is a bare CR; a last line
// without CRLF (possible with BDAT) gets its line ending. It returns the
// first protocol fault, if any.
func (f *lineFilter) Close() error {
	if f.fault == nil && f.cr {
		f.fault = errBareNewline
	}
	if f.fault != nil {
		return f.fault
	}
	if f.lineLen > 0 {
		f.buf = append(f.buf[:0], '\n')
		f.lineLen = 0
		return f.flush()
	}
	return nil
}

// spoolMem is how much of a message is kept in memory before it goes to a
// temporary file.
const spoolMem = 1 << 20

// spool holds one message until the queue has taken it: in memory while it
// is small, then in an unlinked temporary file, so that many large
// messages at once do not exhaust memory.
type spool struct {
	dir  string // for the temporary file; "" is os.TempDir()
	mem  bytes.Buffer
	file *os.File
}

func (s *spool) Write(p []byte) (int, error) {
	if s.file == nil && s.mem.Len()+len(p) > spoolMem {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	if s.file != nil {
		return s.file.Write(p)
	}
	return s.mem.Write(p)
}

func (s *spool) toFile() error {
	f, err := os.CreateTemp(s.dir, "smtpd-spool-")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// Unlinked at once: the space is freed when we close it, whatever
	// happens to this process.
	if err := os.Remove(f.Name()); err != nil {
		return errors.Join(fmt.Errorf("spool: %w", err), f.Close())
	}
	s.file = f
	if _, err := f.Write(s.mem.Bytes()); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.mem = bytes.Buffer{}
	return nil
}

// Reader returns the spooled message from its start.
func (s *spool) Reader() (io.Reader, error) {
	if s.file == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return s.file, nil
}

// Close frees the spool.
func (s *spool) Close() error {
	s.mem = bytes.Buffer{}
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
