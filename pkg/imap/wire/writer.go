package wire

import (
	"bufio"
	"io"
	"strconv"
	"unicode/utf8"
)

// Writer encodes responses (RFC 3501 section 7). Errors are sticky: the
// first one is kept and returned by Flush.
type Writer struct {
	bw  *bufio.Writer
	err error
	// UTF8 is set once the client enabled IMAP4rev2 or UTF8=ACCEPT:
	// quoted strings may then hold UTF-8 (RFC 9051 section 9, QUOTED-CHAR;
	// RFC 6855 section 3) and Mailbox writes names in UTF-8.
	UTF8 bool
}

// NewWriter returns a Writer over w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 32*1024)}
}

// Raw writes s as it is.
func (w *Writer) Raw(s string) *Writer {
	if w.err == nil {
		_, w.err = w.bw.WriteString(s)
	}
	return w
}

// Bytes writes b as it is.
func (w *Writer) Bytes(b []byte) *Writer {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
	}
	return w
}

// SP writes a space.
func (w *Writer) SP() *Writer { return w.Raw(" ") }

// CRLF ends a response line.
func (w *Writer) CRLF() *Writer { return w.Raw("\r\n") }

// Num writes a number.
func (w *Writer) Num(n uint32) *Writer { return w.Raw(strconv.FormatUint(uint64(n), 10)) }

// Num64 writes a number.
func (w *Writer) Num64(n int64) *Writer { return w.Raw(strconv.FormatInt(n, 10)) }

// String writes s as a quoted string when it can be one (7-bit, no CR, LF
// or NUL, not long), otherwise as a literal.
func (w *Writer) String(s string) *Writer {
	if !quotable(s, w.UTF8) {
		return w.Literal([]byte(s))
	}
	w.Raw(`"`)
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			w.Raw(`\`)
		}
		if w.err == nil {
			w.err = w.bw.WriteByte(s[i])
		}
	}
	return w.Raw(`"`)
}

// NString writes s, or NIL when ok is false.
func (w *Writer) NString(s string, ok bool) *Writer {
	if !ok {
		return w.Raw("NIL")
	}
	return w.String(s)
}

// AString writes s as an atom when it can be one, else as a string.
func (w *Writer) AString(s string) *Writer {
	if s != "" && isAtomOnly(s) && s != "NIL" {
		return w.Raw(s)
	}
	return w.String(s)
}

// Mailbox writes a stored (modified UTF-7) mailbox name as the client
// wants it: as it is for IMAP4rev1, in UTF-8 once UTF8 is set. A stored
// name that is not modified UTF-7 is written as it is.
func (w *Writer) Mailbox(stored string) *Writer {
	if w.UTF8 {
		if name, err := DecodeMUTF7(stored); err == nil {
			return w.AString(name)
		}
	}
	return w.AString(stored)
}

// Literal writes b as a literal: "{n}" CRLF and the bytes.
func (w *Writer) Literal(b []byte) *Writer {
	w.Raw("{").Raw(strconv.Itoa(len(b))).Raw("}\r\n")
	return w.Bytes(b)
}

// Flush sends what was written and returns the first error.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Err returns the first error met.
func (w *Writer) Err() error { return w.err }

func quotable(s string, utf8ok bool) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\r' || c == '\n' || c >= 0x80 && !utf8ok {
			return false
		}
	}
	return !utf8ok || utf8.ValidString(s)
}

func isAtomOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			return false
		}
	}
	return true
}
