package pop3

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Line limits. RFC 2449 section 4 raises the RFC 1939 limits to 255 octets
// for a command line including its CRLF; RFC 5034 section 4 lets an AUTH
// command with an initial response, and the SASL responses that follow it,
// be longer, so the reader accepts up to MaxAuthLine and the session checks
// the shorter limit for every other command.
const (
	MaxCommandLine = 255
	MaxAuthLine    = 2048
)

// Errors of the wire layer.
var (
	// ErrLineTooLong is returned by ReadLine after it has discarded the
	// rest of an over-long line, so that the session can answer and go on.
	ErrLineTooLong = errors.New("line too long")
	// ErrSyntax is a command line that is not a keyword and arguments.
	ErrSyntax = errors.New("syntax error")
)

// Command is one parsed command line (RFC 1939 section 3): a keyword of
// three or four letters, upper-cased, and its arguments.
type Command struct {
	Name string   // keyword, upper case
	Args []string // arguments split on spaces
	Rest string   // everything after the keyword and one space, as sent
}

// ParseCommand parses a command line without its line ending. Keywords are
// case-insensitive; arguments are separated by single spaces, but runs of
// spaces are tolerated (clients send them). Rest keeps the argument text as
// it was, for PASS, whose one argument may contain spaces (RFC 1939
// section 7).
func ParseCommand(line string) (Command, error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' && c != '\t' || c == 0x7f {
			return Command{}, ErrSyntax
		}
	}
	name, rest, _ := strings.Cut(line, " ")
	if len(name) < 3 || len(name) > 4 {
		return Command{}, ErrSyntax
	}
	for i := 0; i < len(name); i++ {
		c := name[i] | 0x20
		if c < 'a' || c > 'z' {
			return Command{}, ErrSyntax
		}
	}
	return Command{Name: strings.ToUpper(name), Args: strings.Fields(rest), Rest: rest}, nil
}

// ParseMsgNum parses a message number argument: a decimal number from 1 up,
// without sign or leading zeros beyond what strconv accepts.
func ParseMsgNum(s string) (int, bool) {
	if s == "" || len(s) > 9 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// ReadLine reads one line ending in LF (CRLF or a bare LF, as lenient
// servers accept) and returns it without the line ending. A line longer
// than max octets (not counting its line ending) is read to its end and
// thrown away, and ErrLineTooLong returned, so memory stays bounded and the
// stream stays in step. io.EOF is returned only for a clean end of stream.
func ReadLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	tooLong := false
	for {
		frag, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > max+2 {
				tooLong = true
				buf = nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return "", ErrLineTooLong
			}
			line := buf[:len(buf)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > max {
				return "", ErrLineTooLong
			}
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// Response codes of RFC 2449 section 8 and RFC 3206, sent in brackets
// after -ERR.
const (
	CodeInUse      = "IN-USE"
	CodeLoginDelay = "LOGIN-DELAY"
	CodeSysTemp    = "SYS/TEMP"
	CodeSysPerm    = "SYS/PERM"
	CodeAuth       = "AUTH"
)

// Error is a protocol failure: the text of a -ERR reply, with its response
// code when it has one.
type Error struct {
	Code string // one of the Code constants, or ""
	Msg  string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Msg
	}
	return "[" + e.Code + "] " + e.Msg
}

// Temporary reports whether the failure may pass if the client tries again.
func (e *Error) Temporary() bool {
	return e.Code == CodeSysTemp || e.Code == CodeInUse || e.Code == CodeLoginDelay
}

// writeOK writes "+OK text".
func writeOK(w *bufio.Writer, text string) {
	w.WriteString("+OK")
	if text != "" {
		w.WriteByte(' ')
		w.WriteString(text)
	}
	w.WriteString("\r\n")
}

// writeErr writes "-ERR [CODE] text".
func writeErr(w *bufio.Writer, e *Error) {
	w.WriteString("-ERR ")
	w.WriteString(e.Error())
	w.WriteString("\r\n")
}
