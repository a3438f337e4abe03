package wire

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func readAll(t *testing.T, in string, lim Limits) ([]*Command, []error, string) {
	t.Helper()
	var conts bytes.Buffer
	r := NewReader(strings.NewReader(in), lim)
	r.Continue = func() error { conts.WriteString("+ "); return nil }
	var cmds []*Command
	var errs []error
	for range 20 {
		c, err := r.ReadCommand()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		cmds = append(cmds, c)
		errs = append(errs, err)
		var fe *FatalError
		if errors.As(err, &fe) {
			break
		}
	}
	return cmds, errs, conts.String()
}

func small() Limits {
	return Limits{MaxLine: 100, MaxLiteral: 10, MaxDiscard: 30, MaxDepth: 3, MaxParts: 3}
}

func TestReadCommand(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string // Command.String() or "ERR:<text>"
		conts string
	}{
		{"simple", "a NOOP\r\nb CAPABILITY\n", []string{"a NOOP", "b CAPABILITY"}, ""},
		{"sync literal", "a LOGIN {3}\r\nbob {2}\r\npw\r\n", []string{"a LOGIN {3}<3 bytes> {2}<2 bytes>"}, "+ + "},
		{"nonsync literal", "a LOGIN {3+}\r\nbob pw\r\n", []string{"a LOGIN {3+}<3 bytes> pw"}, ""},
		{"sync too big: no continuation, next line is a command", "a APPEND x {11}\r\nb NOOP\r\n",
			[]string{"ERR:a TOOBIG", "b NOOP"}, ""},
		{"nonsync too big: discarded, never executed", "a APPEND x {11+}\r\nc LOGOUT\r\n\r\nb NOOP\r\n",
			[]string{"ERR:a TOOBIG", "b NOOP"}, ""},
		{"nonsync over discard limit closes", "a APPEND x {31+}\r\n" + strings.Repeat("x", 31) + "\r\n",
			[]string{"FATAL"}, ""},
		{"line too long closes", strings.Repeat("x", 101) + "\r\n", []string{"FATAL"}, ""},
		{"too many literals", "a X {1+}\r\na{1+}\r\nb{1+}\r\nc{1+}\r\nd\r\nb NOOP\r\n", []string{"ERR:a LIMIT", "b NOOP"}, ""},
		{"brace not at end is text", "a X {3} y\r\n", []string{"a X {3} y"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, errs, conts := readAll(t, tt.in, small())
			var got []string
			for i, c := range cmds {
				var ce *CommandError
				var fe *FatalError
				switch {
				case errors.As(errs[i], &ce):
					got = append(got, "ERR:"+ce.Tag+" "+ce.Code)
				case errors.As(errs[i], &fe):
					got = append(got, "FATAL")
				case errs[i] != nil:
					got = append(got, "other:"+errs[i].Error())
				default:
					got = append(got, c.String())
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if conts != tt.conts {
				t.Errorf("continuations %q, want %q", conts, tt.conts)
			}
		})
	}
}

func parse(t *testing.T, in string) *Parser {
	t.Helper()
	cmds, errs, _ := readAll(t, in, DefaultLimits)
	if len(cmds) != 1 || errs[0] != nil {
		t.Fatalf("read %q: %v", in, errs)
	}
	return NewParser(cmds[0], 3)
}

func TestParserStrings(t *testing.T) {
	p := parse(t, "tag1 LOGIN \"a\\\"b\\\\\" {4+}\r\np w \r\n")
	tag, err := p.Tag()
	if err != nil || tag != "tag1" {
		t.Fatalf("tag %q %v", tag, err)
	}
	must(t, p.SP())
	name, _ := p.Atom()
	must(t, p.SP())
	u, err := p.AString()
	must(t, err)
	must(t, p.SP())
	pw, err := p.AString()
	must(t, err)
	if name != "LOGIN" || u != `a"b\` || pw != "p w " || !p.AtEnd() {
		t.Errorf("got %q %q %q end=%v", name, u, pw, p.AtEnd())
	}
	for _, bad := range []string{`a "unterminated`, `a "bad\escape"`, `a )`, "a {3}x"} {
		p := parse(t, bad+"\r\n")
		_, _ = p.Tag()
		_ = p.SP()
		if _, err := p.AString(); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParserListsAndDepth(t *testing.T) {
	p := parse(t, `a ((x) "y" (\Seen z))`+"\r\n")
	_, _ = p.Tag()
	must(t, p.SP())
	var got []string
	var item func() error
	item = func() error {
		if p.Peek() == '(' {
			return p.List(item)
		}
		if p.Peek() == '"' {
			s, err := p.String()
			got = append(got, s)
			return err
		}
		f, err := p.Flag()
		got = append(got, f)
		return err
	}
	must(t, p.List(item))
	if strings.Join(got, ",") != `x,y,\Seen,z` || !p.AtEnd() {
		t.Errorf("got %v", got)
	}
	p = parse(t, "a ((((x))))\r\n")
	_, _ = p.Tag()
	must(t, p.SP())
	if err := p.List(item); !errors.Is(err, ErrTooDeep) {
		t.Errorf("depth 4 with max 3: %v", err)
	}
}

func TestSeqSet(t *testing.T) {
	tests := []struct {
		in   string
		max  uint32
		in1  []uint32
		out  []uint32
		fail bool
	}{
		{in: "1:3,5", max: 10, in1: []uint32{1, 2, 3, 5}, out: []uint32{4, 6}},
		{in: "4:*", max: 6, in1: []uint32{4, 6}, out: []uint32{3, 7}},
		{in: "*:4", max: 6, in1: []uint32{5}, out: []uint32{3}},
		{in: "*", max: 9, in1: []uint32{9}, out: []uint32{8}},
		{in: "0", fail: true},
		{in: "1:", fail: true},
		{in: "99999999999", fail: true},
	}
	for _, tt := range tests {
		p := parse(t, tt.in+"\r\n")
		s, err := p.SeqSet()
		if (err != nil) != tt.fail {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		for _, n := range tt.in1 {
			if !s.Contains(n, tt.max) {
				t.Errorf("%q should contain %d", tt.in, n)
			}
		}
		for _, n := range tt.out {
			if s.Contains(n, tt.max) {
				t.Errorf("%q should not contain %d", tt.in, n)
			}
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Raw("* ").String(`a"b`).SP().String("line\nbreak").SP().NString("", false).SP().
		AString("INBOX").SP().AString("two words").SP().String("é").CRLF()
	must(t, w.Flush())
	want := "* \"a\\\"b\" {10}\r\nline\nbreak NIL INBOX \"two words\" {2}\r\né\r\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSpooledLiteral(t *testing.T) {
	lim := small()
	lim.MaxLiteral, lim.SpoolAbove, lim.SpoolDir = 100, 4, t.TempDir()
	r := NewReader(strings.NewReader("a APPEND x {10+}\r\n0123456789 {3+}\r\nabc\r\n"), lim)
	c, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 2 || c.Files[0] == nil || c.Files[1] != nil {
		t.Fatalf("files %v", c.Files)
	}
	p := NewParser(c, 3)
	_, _ = p.Tag()
	for range 2 {
		must(t, p.SP())
		_, _ = p.Atom()
	}
	must(t, p.SP())
	rd, size, err := p.StringReader()
	must(t, err)
	data, err := io.ReadAll(rd)
	if err != nil || string(data) != "0123456789" || size != 10 {
		t.Fatalf("spooled: %q %d %v", data, size, err)
	}
	must(t, p.SP())
	if s, err := p.String(); err != nil || s != "abc" || !p.AtEnd() {
		t.Fatalf("second literal %q %v", s, err)
	}
	name := c.Files[0].Name()
	c.Close()
	c.Close()
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("spool file left: %v", err)
	}
	// A command refused after a literal was spooled leaves no file.
	r = NewReader(strings.NewReader("a X {10+}\r\n0123456789 {200+}\r\n"), lim)
	if _, err := r.ReadCommand(); err == nil {
		t.Fatal("accepted")
	}
	if ents, _ := os.ReadDir(lim.SpoolDir); len(ents) != 0 {
		t.Errorf("left %d spool files", len(ents))
	}
}
