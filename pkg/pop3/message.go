package pop3

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32*1024) }}

// ReadError is a failure to read the stored message in the middle of a
// multi-line reply: the reply cannot be finished, so the session must end.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "reading message: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// WriteMessage copies a stored message to w as the body of a multi-line
// reply (RFC 1939 section 3): every line ends in CRLF, whether it was
// stored with CRLF or a bare LF; a line starting with "." gets another one
// ("byte-stuffing"); the reply ends with ".\r\n". With bodyLines >= 0 it
// sends the header, the empty line and that many lines of the body, as TOP
// does (RFC 1939 section 7). It writes into w's buffer and never flushes,
// so a message costs no system calls of its own.
func WriteMessage(w *bufio.Writer, r io.Reader, bodyLines int) error {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() { br.Reset(nil); readerPool.Put(br) }()

	atStart := true  // the next byte begins a line
	lastCR := false  // the previous fragment ended in CR
	inHeader := true // no empty line seen yet
	body := 0        // body lines sent, for TOP
	for {
		frag, err := br.ReadSlice('\n')
		if n := len(frag); n > 0 {
			if atStart {
				if bodyLines >= 0 && !inHeader {
					if body == bodyLines {
						break
					}
					body++
				}
				if inHeader && (n == 1 || n == 2 && frag[0] == '\r') && frag[n-1] == '\n' {
					inHeader = false
				}
				if frag[0] == '.' {
					w.WriteByte('.')
				}
			}
			switch {
			case frag[n-1] != '\n':
				w.Write(frag)
				lastCR = frag[n-1] == '\r'
			case n >= 2 && frag[n-2] == '\r' || n == 1 && lastCR:
				w.Write(frag)
				lastCR = false
			default:
				w.Write(frag[:n-1])
				w.WriteString("\r\n")
				lastCR = false
			}
			atStart = frag[n-1] == '\n'
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		return &ReadError{err}
	}
	if !atStart {
		// A message without a final line ending still ends its last line.
		w.WriteString("\r\n")
	}
	_, err := w.WriteString(".\r\n")
	if err != nil {
		return fmt.Errorf("writing reply: %w", err)
	}
	return nil
}
