// Package wire is the IMAP4 wire codec (RFC 3501 section 9 and RFC 9051
// section 9 grammar): it reads one command from the client, with its
// synchronising ({n}) and non-synchronising ({n+}, RFC 7888 LITERAL+)
// literals, under limits on line length, literal size and list nesting, and
// parses its arguments (atom, quoted, literal, astring, list, sequence-set).
// It also encodes responses. It decides nothing about what a command means:
// that is package imap.
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Limits bound what one command may hold. Every field must be positive.
type Limits struct {
	MaxLine    int   // bytes of command text (CRLF excluded), all lines of one command together
	MaxLiteral int64 // bytes in one literal (APPENDLIMIT, RFC 7889)
	MaxDiscard int64 // bytes of refused non-synchronising literals read and thrown away before closing
	MaxDepth   int   // nesting of parenthesised lists
	MaxParts   int   // literals in one command
	SpoolAbove int64 // literals larger than this go to a temporary file; 0: never
	SpoolDir   string
}

// DefaultLimits are the limits imapd uses unless told otherwise.
var DefaultLimits = Limits{
	MaxLine:    64 * 1024,
	MaxLiteral: 64 << 20,
	MaxDiscard: 128 << 20,
	MaxDepth:   32,
	MaxParts:   256,
	SpoolAbove: 1 << 20,
}

// Command is one command as read from the wire: its text lines, each but the
// last ending in a literal announcement ({n} or {n+}) whose data is the
// literal of the same index, in memory or, when large, in a temporary file
// (Files; the caller must Close the command).
type Command struct {
	Lines    [][]byte
	Literals [][]byte
	Files    []*os.File
}

// CommandError is a command refused while it was read. The reader has kept
// in step with the client (the command and its literals are consumed), so
// the session may answer with a tagged response and carry on.
type CommandError struct {
	Tag  string // "*" when none could be read
	Code string // response code such as TOOBIG, or ""
	Text string
}

func (e *CommandError) Error() string { return "imap command: " + e.Text }

// FatalError means the connection can no longer be kept in step with the
// client (a line too long, a literal too big to throw away): the session
// must say BYE and close.
type FatalError struct{ Text string }

func (e *FatalError) Error() string { return "imap: " + e.Text }

// Reader reads commands from a client.
type Reader struct {
	br  *bufio.Reader
	lim Limits
	// Continue is called before the data of a synchronising literal is
	// read: the session sends "+ " and flushes (RFC 3501 section 7.5).
	Continue func() error
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 16*1024), lim: lim}
}

// ReadLine reads one line (without CRLF) of at most max bytes; used for
// AUTHENTICATE continuation data and IDLE's DONE.
func (r *Reader) ReadLine(max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(line)+len(chunk) > max+2 {
			return nil, &FatalError{Text: "line too long"}
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

// ReadCommand reads one command with its literals. It returns a
// *CommandError for a command refused but consumed, a *FatalError when the
// connection must close, or the reader's error (io.EOF, a timeout).
func (r *Reader) ReadCommand() (_ *Command, err error) {
	cmd := &Command{}
	defer func() {
		if err != nil {
			cmd.Close() // no spooled literal outlives a refused command
		}
	}()
	text := 0
	var refused *CommandError
	for {
		line, err := r.ReadLine(r.lim.MaxLine - text)
		if err != nil {
			return nil, err
		}
		text += len(line)
		n, sync, ok := literalAnnounce(line)
		if !ok {
			cmd.Lines = append(cmd.Lines, line)
			if refused != nil {
				return nil, refused
			}
			return cmd, nil
		}
		if refused == nil {
			refused = r.checkLiteral(cmd, line, n)
		}
		if refused != nil {
			if sync {
				// The client waits for "+" and will not send the data
				// (RFC 3501 section 7.5): the command ends here.
				return nil, refused
			}
			if err := r.discard(n); err != nil {
				return nil, err
			}
			continue
		}
		if sync && r.Continue != nil {
			if err := r.Continue(); err != nil {
				return nil, err
			}
		}
		lit, file, err := r.readLiteral(n)
		if err != nil {
			return nil, err
		}
		cmd.Lines = append(cmd.Lines, line)
		cmd.Literals = append(cmd.Literals, lit)
		cmd.Files = append(cmd.Files, file)
	}
}

// readLiteral reads n bytes: into memory, or into a temporary file when
// there are more than Limits.SpoolAbove, so that a large APPEND costs disk,
// not memory.
func (r *Reader) readLiteral(n int64) ([]byte, *os.File, error) {
	if r.lim.SpoolAbove <= 0 || n <= r.lim.SpoolAbove {
		lit := make([]byte, n)
		_, err := io.ReadFull(r.br, lit)
		return lit, nil, err
	}
	f, err := os.CreateTemp(r.lim.SpoolDir, "mailsrv-imapd-literal-")
	if err != nil {
		return nil, nil, fmt.Errorf("spool literal: %w", err)
	}
	if _, err = io.CopyN(f, r.br, n); err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		closeSpool(f)
		return nil, nil, err
	}
	return nil, f, nil
}

func closeSpool(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// Close removes the temporary files of spooled literals. It is safe to
// call more than once.
func (c *Command) Close() {
	for i, f := range c.Files {
		if f != nil {
			closeSpool(f)
			c.Files[i] = nil
		}
	}
}

// checkLiteral refuses a literal before any of it is read.
func (r *Reader) checkLiteral(cmd *Command, line []byte, n int64) *CommandError {
	first := line
	if len(cmd.Lines) > 0 {
		first = cmd.Lines[0]
	}
	tag := TagOf(first)
	switch {
	case n > r.lim.MaxLiteral:
		// RFC 7889 section 3: TOOBIG for a literal over APPENDLIMIT.
		return &CommandError{Tag: tag, Code: "TOOBIG", Text: "literal larger than " +
			strconv.FormatInt(r.lim.MaxLiteral, 10) + " bytes"}
	case len(cmd.Literals) >= r.lim.MaxParts:
		return &CommandError{Tag: tag, Code: "LIMIT", Text: "too many literals in one command"}
	}
	return nil
}

// discard throws away a refused non-synchronising literal (RFC 7888
// section 4: read and discard it, or close the connection).
func (r *Reader) discard(n int64) error {
	if n > r.lim.MaxDiscard {
		return &FatalError{Text: "non-synchronising literal too big"}
	}
	r.lim.MaxDiscard -= n
	_, err := io.CopyN(io.Discard, r.br, n)
	return err
}

// literalAnnounce reports whether line ends in "{n}" or "{n+}".
func literalAnnounce(line []byte) (n int64, sync, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false, false
	}
	digits := line[i+1 : len(line)-1]
	sync = true
	if len(digits) > 0 && digits[len(digits)-1] == '+' {
		digits, sync = digits[:len(digits)-1], false
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 0, false, false
	}
	return n, sync, true
}

// TagOf returns the tag that starts line, or "*" if it has none that is
// valid (RFC 3501 section 9, tag).
func TagOf(line []byte) string {
	i := bytes.IndexByte(line, ' ')
	if i < 0 {
		i = len(line)
	}
	tag := line[:i]
	if len(tag) == 0 || len(tag) > 64 {
		return "*"
	}
	for _, c := range tag {
		if !isAStringChar(c) || c == '+' {
			return "*"
		}
	}
	return string(tag)
}

// String formats a command for debugging, literals replaced by their size.
func (c *Command) String() string {
	var b bytes.Buffer
	for i, l := range c.Lines {
		b.Write(l)
		if i < len(c.Literals) {
			fmt.Fprintf(&b, "<%d bytes>", len(c.Literals[i]))
		}
	}
	return b.String()
}

// SetMaxLiteral changes the literal limit (lower before login, APPENDLIMIT
// after).
func (r *Reader) SetMaxLiteral(n int64) { r.lim.MaxLiteral = n }

// Buffered returns how many bytes were received but not yet read as
// commands. After STARTTLS they are thrown away with the Reader: they came
// in the clear and must never be taken as commands (RFC 3501 section
// 6.2.1, the STARTTLS command injection flaw).
func (r *Reader) Buffered() int { return r.br.Buffered() }
