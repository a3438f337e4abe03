package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SyntaxError is a command whose arguments do not parse: answered with BAD.
type SyntaxError struct{ Text string }

func (e *SyntaxError) Error() string { return "syntax error: " + e.Text }

func syntaxf(text string) error { return &SyntaxError{Text: text} }

// ErrTooDeep is a list nested deeper than Limits.MaxDepth.
var ErrTooDeep = &SyntaxError{Text: "lists nested too deeply"}

// Parser walks the arguments of one Command. Its methods consume what they
// parse and return a *SyntaxError when the input does not match.
type Parser struct {
	c        *Command
	line     int // index into c.Lines
	pos      int // offset in c.Lines[line]
	depth    int
	maxDepth int
	// UTF8 is set once the client enabled IMAP4rev2 or UTF8=ACCEPT:
	// quoted strings must then be valid UTF-8 and mailbox names are
	// UTF-8, not modified UTF-7 (RFC 9051 section 5.1, RFC 6855 section 3).
	UTF8 bool
}

// NewParser returns a parser at the start of c, with lists nested at most
// maxDepth deep.
func NewParser(c *Command, maxDepth int) *Parser {
	return &Parser{c: c, maxDepth: maxDepth}
}

func (p *Parser) cur() []byte { return p.c.Lines[p.line] }

// Peek returns the next byte, or 0 at the end of a line.
func (p *Parser) Peek() byte {
	if p.pos < len(p.cur()) {
		return p.cur()[p.pos]
	}
	return 0
}

// AtEnd reports whether all of the command was consumed.
func (p *Parser) AtEnd() bool {
	return p.line == len(p.c.Lines)-1 && p.pos == len(p.cur())
}

// End fails unless all of the command was consumed.
func (p *Parser) End() error {
	if !p.AtEnd() {
		return syntaxf("unexpected characters at end of command")
	}
	return nil
}

// Accept consumes b if it is next.
func (p *Parser) Accept(b byte) bool {
	if p.Peek() == b && b != 0 {
		p.pos++
		return true
	}
	return false
}

// Expect consumes b or fails.
func (p *Parser) Expect(b byte) error {
	if !p.Accept(b) {
		return syntaxf("expected " + strconv.QuoteRune(rune(b)))
	}
	return nil
}

// SP consumes one space.
func (p *Parser) SP() error { return p.Expect(' ') }

// Tag reads the command tag.
func (p *Parser) Tag() (string, error) {
	t := p.run(func(c byte) bool { return isAStringChar(c) && c != '+' })
	if t == "" || len(t) > 64 {
		return "", syntaxf("missing or bad tag")
	}
	return t, nil
}

func (p *Parser) run(ok func(byte) bool) string {
	l := p.cur()
	start := p.pos
	for p.pos < len(l) && ok(l[p.pos]) {
		p.pos++
	}
	return string(l[start:p.pos])
}

// Atom reads an atom (RFC 3501 section 9, atom).
func (p *Parser) Atom() (string, error) {
	a := p.run(isAtomChar)
	if a == "" {
		return "", syntaxf("expected atom")
	}
	return a, nil
}

// AtomWith reads a run of atom characters plus those in extra (for fetch
// attributes such as BODY.PEEK and flags such as \Seen).
func (p *Parser) AtomWith(extra string) (string, error) {
	a := p.run(func(c byte) bool { return isAtomChar(c) || strings.IndexByte(extra, c) >= 0 })
	if a == "" {
		return "", syntaxf("expected atom")
	}
	return a, nil
}

// Number reads a 32-bit unsigned number.
func (p *Parser) Number() (uint32, error) {
	d := p.run(func(c byte) bool { return c >= '0' && c <= '9' })
	n, err := strconv.ParseUint(d, 10, 32)
	if d == "" || err != nil {
		return 0, syntaxf("expected number")
	}
	return uint32(n), nil
}

// Number64 reads a 63-bit unsigned number.
func (p *Parser) Number64() (int64, error) {
	d := p.run(func(c byte) bool { return c >= '0' && c <= '9' })
	n, err := strconv.ParseInt(d, 10, 64)
	if d == "" || err != nil {
		return 0, syntaxf("expected number")
	}
	return n, nil
}

// AString reads an astring: an atom (with ']' allowed), a quoted string or
// a literal.
func (p *Parser) AString() (string, error) {
	switch p.Peek() {
	case '"', '{':
		b, err := p.StringBytes()
		return string(b), err
	}
	a := p.run(isAStringChar)
	if a == "" {
		return "", syntaxf("expected astring")
	}
	return a, nil
}

// String reads a quoted string or a literal.
func (p *Parser) String() (string, error) {
	b, err := p.StringBytes()
	return string(b), err
}

// StringBytes reads a quoted string or a literal, without copying a literal.
func (p *Parser) StringBytes() ([]byte, error) {
	switch p.Peek() {
	case '"':
		return p.quoted()
	case '{':
		return p.Literal()
	}
	return nil, syntaxf("expected string")
}

func (p *Parser) quoted() ([]byte, error) {
	p.pos++
	l := p.cur()
	var out []byte
	for p.pos < len(l) {
		c := l[p.pos]
		p.pos++
		switch c {
		case '"':
			if p.UTF8 && !utf8.Valid(out) {
				return nil, syntaxf("invalid UTF-8 in quoted string")
			}
			return out, nil
		case '\\':
			if p.pos == len(l) || (l[p.pos] != '"' && l[p.pos] != '\\') {
				return nil, syntaxf("bad escape in quoted string")
			}
			out = append(out, l[p.pos])
			p.pos++
		case 0:
			return nil, syntaxf("NUL in quoted string")
		default:
			out = append(out, c)
		}
	}
	return nil, syntaxf("unterminated quoted string")
}

// Literal reads a literal; its announcement must end the current line.
func (p *Parser) Literal() ([]byte, error) {
	l := p.cur()
	if p.line >= len(p.c.Literals) {
		return nil, syntaxf("literal announcement not at end of line")
	}
	rest := l[p.pos:]
	if _, _, ok := literalAnnounce(rest); !ok || bytes.LastIndexByte(rest, '{') != 0 {
		return nil, syntaxf("bad literal")
	}
	lit := p.c.Literals[p.line]
	var file *os.File
	if p.line < len(p.c.Files) {
		file = p.c.Files[p.line]
	}
	p.line++
	p.pos = 0
	if file != nil {
		// A spooled literal where a string is wanted: read it back.
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return io.ReadAll(file)
	}
	return lit, nil
}

// StringReader reads a quoted string or a literal as a reader and its
// size, without reading a spooled literal into memory (APPEND).
func (p *Parser) StringReader() (io.Reader, int64, error) {
	if p.Peek() == '{' && p.line < len(p.c.Files) && p.c.Files[p.line] != nil {
		file := p.c.Files[p.line]
		rest := p.cur()[p.pos:]
		if _, _, ok := literalAnnounce(rest); !ok || bytes.LastIndexByte(rest, '{') != 0 {
			return nil, 0, syntaxf("bad literal")
		}
		p.line++
		p.pos = 0
		fi, err := file.Stat()
		if err == nil {
			_, err = file.Seek(0, io.SeekStart)
		}
		if err != nil {
			return nil, 0, err
		}
		return file, fi.Size(), nil
	}
	b, err := p.StringBytes()
	return bytes.NewReader(b), int64(len(b)), err
}

// Mailbox reads a mailbox name (an astring) and returns it as stored, in
// modified UTF-7 (RFC 3501 section 5.1.3). With UTF8 set the name is UTF-8
// and is encoded. Without it a 7-bit name is already modified UTF-7; a
// name with 8-bit bytes that is valid UTF-8 is taken as modified UTF-7
// with raw UTF-8 characters in it ("&-" is "&") and encoded, since some
// clients (go-imap v2) send that as soon as IMAP4rev2 is advertised. A
// name with control characters is returned as it is, for the mail store
// to refuse.
func (p *Parser) Mailbox() (string, error) {
	name, err := p.AString()
	if err != nil {
		return "", err
	}
	return ToMUTF7(name, p.UTF8), nil
}

// ToMUTF7 is how Mailbox converts a name (or a LIST pattern, whose
// wildcards are 7-bit) given by the client. A UTF-8 name is first put in
// Unicode normalization form C (RFC 9051 section 5.1 wants Net-Unicode,
// RFC 5198), so that "é" typed as e and a combining accent (as macOS
// clients send it) names the same folder as the precomposed "é".
func ToMUTF7(name string, utf8Names bool) string {
	eight := false
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c < 0x20 || c == 0x7f:
			return name
		case c >= 0x80:
			eight = true
		}
	}
	switch {
	case utf8Names:
		return EncodeMUTF7(norm.NFC.String(name))
	case eight && utf8.ValidString(name):
		return EncodeMUTF7(norm.NFC.String(decodeMixed(name)))
	}
	return name
}

// NString reads a string or NIL.
func (p *Parser) NString() (string, bool, error) {
	if p.Peek() != '"' && p.Peek() != '{' {
		a, err := p.Atom()
		if err != nil || !strings.EqualFold(a, "NIL") {
			return "", false, syntaxf("expected string or NIL")
		}
		return "", false, nil
	}
	s, err := p.String()
	return s, true, err
}

// List parses "(" [item *(SP item)] ")", calling item for each element.
func (p *Parser) List(item func() error) error {
	if err := p.Open(); err != nil {
		return err
	}
	if p.Accept(')') {
		p.depth--
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		if p.Accept(')') {
			p.depth--
			return nil
		}
		if err := p.SP(); err != nil {
			return err
		}
	}
}

// Open consumes "(" and counts the nesting; the caller consumes ")" with
// Close.
func (p *Parser) Open() error {
	if err := p.Expect('('); err != nil {
		return err
	}
	p.depth++
	if p.depth > p.maxDepth {
		return ErrTooDeep
	}
	return nil
}

// Close consumes ")".
func (p *Parser) Close() error {
	if err := p.Expect(')'); err != nil {
		return err
	}
	p.depth--
	return nil
}

// Enter counts one level of nesting that is not a parenthesised list (a
// NOT or OR search key), so that recursion stays bounded.
func (p *Parser) Enter() error {
	p.depth++
	if p.depth > p.maxDepth {
		return ErrTooDeep
	}
	return nil
}

// Leave undoes Enter.
func (p *Parser) Leave() { p.depth-- }

// Flag reads a flag: an atom, or "\" and an atom (RFC 3501 section 9, flag).
func (p *Parser) Flag() (string, error) {
	bs := p.Accept('\\')
	a, err := p.Atom()
	if err != nil {
		return "", syntaxf("expected flag")
	}
	if bs {
		return `\` + a, nil
	}
	return a, nil
}

// FlagList reads "(" [flag *(SP flag)] ")".
func (p *Parser) FlagList() ([]string, error) {
	var flags []string
	err := p.List(func() error {
		f, err := p.Flag()
		flags = append(flags, f)
		return err
	})
	return flags, err
}

// SeqSet reads a sequence-set such as "1:3,5,7:*" (RFC 3501 section 9).
// "$" (RFC 5182 SEARCHRES) is returned as a set with Saved set.
func (p *Parser) SeqSet() (SeqSet, error) {
	if p.Accept('$') {
		return SeqSet{Saved: true}, nil
	}
	var s SeqSet
	for {
		lo, err := p.seqNumber()
		if err != nil {
			return SeqSet{}, err
		}
		hi := lo
		if p.Accept(':') {
			if hi, err = p.seqNumber(); err != nil {
				return SeqSet{}, err
			}
		}
		if len(s.Ranges) >= 10000 {
			return SeqSet{}, syntaxf("sequence set too long")
		}
		s.Ranges = append(s.Ranges, SeqRange{Lo: lo, Hi: hi})
		if !p.Accept(',') {
			return s, nil
		}
	}
}

func (p *Parser) seqNumber() (uint32, error) {
	if p.Accept('*') {
		return Star, nil
	}
	n, err := p.Number()
	if err != nil || n == 0 {
		return 0, syntaxf("bad sequence set")
	}
	return n, nil
}

// Rest returns what is left of the current line, for error messages.
func (p *Parser) Rest() string { return string(p.cur()[p.pos:]) }

// Star stands for "*" in a SeqRange: the largest number in use.
const Star = math.MaxUint32

// SeqRange is lo:hi, in either order, with Star for "*".
type SeqRange struct{ Lo, Hi uint32 }

// SeqSet is a parsed sequence-set.
type SeqSet struct {
	Ranges []SeqRange
	Saved  bool // "$": the result of the last SEARCH SAVE
}

// Contains reports whether n is in the set, "*" standing for max.
func (s SeqSet) Contains(n, max uint32) bool {
	for _, r := range s.Ranges {
		lo, hi := r.Lo, r.Hi
		if lo == Star {
			lo = max
		}
		if hi == Star {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// IsSyntax reports whether err is a *SyntaxError.
func IsSyntax(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se)
}

// RFC 3501 section 9: ATOM-CHAR is any CHAR except atom-specials
// ( ) { SP CTL % * " \ ]; ASTRING-CHAR adds ']'.
func isAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// IsListChar reports whether c may appear in a LIST pattern atom
// (list-char: ATOM-CHAR, list-wildcards, resp-specials).
func IsListChar(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' }

// ListMailbox reads a LIST pattern: a string, or atom characters with the
// wildcards % and * (RFC 3501 section 9, list-mailbox).
func (p *Parser) ListMailbox() (string, error) {
	if c := p.Peek(); c == '"' || c == '{' {
		return p.String()
	}
	a := p.run(IsListChar)
	if a == "" {
		return "", syntaxf("expected mailbox pattern")
	}
	return a, nil
}

// Token reads the longest run of bytes for which ok holds (possibly none),
// for grammar elements built from character classes, such as fetch
// attribute names and section specifications.
func (p *Parser) Token(ok func(byte) bool) string { return p.run(ok) }
