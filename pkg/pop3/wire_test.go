package pop3

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name, line string
		want       Command
		err        error
	}{
		{name: "simple", line: "STAT", want: Command{Name: "STAT", Args: []string{}}},
		{name: "lower case", line: "retr 12", want: Command{Name: "RETR", Args: []string{"12"}, Rest: "12"}},
		{name: "two args", line: "TOP 1 10", want: Command{Name: "TOP", Args: []string{"1", "10"}, Rest: "1 10"}},
		{name: "pass with spaces", line: "PASS a b  c", want: Command{Name: "PASS", Args: []string{"a", "b", "c"}, Rest: "a b  c"}},
		{name: "empty", line: "", err: ErrSyntax},
		{name: "too short", line: "RE 1", err: ErrSyntax},
		{name: "too long", line: "RETRIEVE 1", err: ErrSyntax},
		{name: "digit", line: "RET1", err: ErrSyntax},
		{name: "nul", line: "USER a\x00b", err: ErrSyntax},
		{name: "leading space", line: " STAT", err: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.line)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got.Name != tt.want.Name || got.Rest != tt.want.Rest || !slices.Equal(got.Args, tt.want.Args) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMsgNum(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "42": 42, "0": 0, "-1": 0, "+1": 0, "x": 0, "": 0, "9999999999": 0} {
		n, ok := ParseMsgNum(s)
		if ok != (want > 0) || ok && n != want {
			t.Errorf("ParseMsgNum(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 5000)
	r := bufio.NewReaderSize(strings.NewReader("STAT\r\nNOOP\n"+long+"\r\nQUIT\r\npartial"), 16)
	for _, want := range []string{"STAT", "NOOP"} {
		if got, err := ReadLine(r, 100); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if _, err := ReadLine(r, 100); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: err = %v", err)
	}
	if got, err := ReadLine(r, 100); err != nil || got != "QUIT" {
		t.Fatalf("after long line: %q, %v", got, err)
	}
	if _, err := ReadLine(r, 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("partial line: err = %v", err)
	}
	if _, err := ReadLine(r, 100); !errors.Is(err, io.EOF) {
		t.Fatalf("end: err = %v", err)
	}
	// Exactly at the limit is accepted, one more is not.
	r = bufio.NewReader(strings.NewReader(strings.Repeat("a", 10) + "\r\n" + strings.Repeat("a", 11) + "\r\n"))
	if got, err := ReadLine(r, 10); err != nil || len(got) != 10 {
		t.Fatalf("at limit: %q, %v", got, err)
	}
	if _, err := ReadLine(r, 10); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("over limit: err = %v", err)
	}
}

func TestWriteMessage(t *testing.T) {
	tests := []struct {
		name, in string
		lines    int
		want     string
	}{
		{name: "bare LF", in: "A: b\n\nbody\n", lines: -1, want: "A: b\r\n\r\nbody\r\n.\r\n"},
		{name: "CRLF kept", in: "A: b\r\n\r\nbody\r\n", lines: -1, want: "A: b\r\n\r\nbody\r\n.\r\n"},
		{name: "dot stuffing", in: "A: b\n\n.\n..x\n.y\nz.\n", lines: -1, want: "A: b\r\n\r\n..\r\n...x\r\n..y\r\nz.\r\n.\r\n"},
		{name: "no final newline", in: "A: b\n\nlast", lines: -1, want: "A: b\r\n\r\nlast\r\n.\r\n"},
		{name: "empty", in: "", lines: -1, want: ".\r\n"},
		{name: "lone CR kept", in: "A: b\r\n\r\nx\ry\n", lines: -1, want: "A: b\r\n\r\nx\ry\r\n.\r\n"},
		{name: "top 0", in: "A: b\nC: d\n\nl1\nl2\n", lines: 0, want: "A: b\r\nC: d\r\n\r\n.\r\n"},
		{name: "top 1", in: "A: b\r\n\r\nl1\r\nl2\r\n", lines: 1, want: "A: b\r\n\r\nl1\r\n.\r\n"},
		{name: "top more than body", in: "A: b\n\nl1\n", lines: 5, want: "A: b\r\n\r\nl1\r\n.\r\n"},
		{name: "top without body", in: "A: b\n", lines: 3, want: "A: b\r\n.\r\n"},
		{name: "top stuffs", in: "A: b\n\n.x\n.y\n", lines: 1, want: "A: b\r\n\r\n..x\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			w := bufio.NewWriter(&b)
			if err := WriteMessage(w, strings.NewReader(tt.in), tt.lines); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

// TestWriteMessageLongLines crosses the reader's buffer size with CR and
// LF split across reads.
func TestWriteMessageLongLines(t *testing.T) {
	for _, n := range []int{32*1024 - 2, 32*1024 - 1, 32 * 1024, 32*1024 + 1, 100000} {
		line := strings.Repeat("y", n)
		in := "A: b\n\n" + line + "\r\n." + line + "\n"
		var b strings.Builder
		w := bufio.NewWriter(&b)
		if err := WriteMessage(w, &oneByteAtEnd{r: strings.NewReader(in)}, -1); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		want := "A: b\r\n\r\n" + line + "\r\n.." + line + "\r\n.\r\n"
		if b.String() != want {
			t.Errorf("n=%d: output differs (len %d, want %d)", n, b.Len(), len(want))
		}
	}
}

// oneByteAtEnd returns short reads, to split lines at odd places.
type oneByteAtEnd struct{ r io.Reader }

func (o *oneByteAtEnd) Read(p []byte) (int, error) {
	if len(p) > 7919 {
		p = p[:7919]
	}
	return o.r.Read(p)
}

func TestCountCRLF(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "a\n": 3, "a\r\n": 3, "\n\n": 4, "a\rb": 3, "x\r\n\n": 5} {
		got, err := countCRLF(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("countCRLF(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
