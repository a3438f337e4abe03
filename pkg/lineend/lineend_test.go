package lineend

import (
	"bytes"
	"strings"
	"testing"
)

func convert(t testing.TB, chunks ...string) string {
	var b bytes.Buffer
	l := &LFWriter{W: &b}
	for _, c := range chunks {
		if n, err := l.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if l.Written() != int64(b.Len()) {
		t.Fatalf("Written %d, wrote %d", l.Written(), b.Len())
	}
	return b.String()
}

func TestLFWriter(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"a\r\nb\r\n"}, "a\nb\n"},
		{[]string{"a\r", "\nb"}, "a\nb"},
		{[]string{"a\r", "b"}, "a\rb"},
		{[]string{"a\r"}, "a\r"},
		{[]string{"\r\r\n\n"}, "\r\n\n"},
		{[]string{"x\r", "", "\ny"}, "x\ny"},
		{[]string{"no line ends"}, "no line ends"},
		{[]string{"\n\n"}, "\n\n"},
	} {
		if got := convert(t, tc.in...); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Any split of the input gives what one ReplaceAll of CRLF gives.
func FuzzLFWriter(f *testing.F) {
	f.Add("a\r\nb\r\n", 1)
	f.Add("\r\r\n\r", 2)
	f.Fuzz(func(t *testing.T, s string, cut int) {
		want := strings.ReplaceAll(s, "\r\n", "\n")
		if cut < 0 || cut > len(s) {
			cut = len(s) / 2
		}
		if got := convert(t, s[:cut], s[cut:]); got != want {
			t.Fatalf("%q split at %d: got %q, want %q", s, cut, got, want)
		}
	})
}
