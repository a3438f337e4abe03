package imap

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// FuzzHeaderPart holds headerPart to go-message's ReadHeader, which
// parseMessage uses: the same header length, and the same values for
// every field asked for (all, or some).
func FuzzHeaderPart(f *testing.F) {
	f.Add([]byte("Subject: a\r\nFrom: b\r\n\r\n"), "Subject")
	f.Add([]byte("Subject: a\r\n  folded\r\n\tagain\r\nSubject: second\r\nX: y\r\n\r\nbody"), "subject,x")
	f.Add([]byte("From: a\r\nnot a field\r\nSubject: b\r\n\r\n"), "Subject")
	f.Add([]byte(" first continues\r\nSubject: b\r\n\r\n"), "Subject")
	f.Add([]byte("Subject: no blank line\r\n"), "Subject")
	f.Add([]byte("\r\n"), "")
	f.Add([]byte(":empty\r\nSubject : spaced\r\nSubject:\r\n   \r\n\r\n"), "Subject")
	f.Add([]byte("A: 1\r\nB: 2\r\n C\r\nA: 3\r\n\r\n"), "a,b")
	f.Fuzz(func(t *testing.T, data []byte, names string) {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")) // as stored messages are read
		var fields []string
		if names != "" {
			fields = strings.Split(names, ",")
		}
		want := parseMessage(data)
		for _, fs := range [][]string{nil, fields} {
			got := headerPart(data, fs)
			if got.hdrLen != want.hdrLen {
				t.Fatalf("hdrLen %d, parseMessage %d", got.hdrLen, want.hdrLen)
			}
			keys := map[string]bool{}
			for _, h := range []textproto.Header{got.header.Header, want.header.Header} {
				for fl := h.Fields(); fl.Next(); {
					keys[fl.Key()] = true
				}
			}
			for k := range keys {
				asked := fs == nil
				for _, f := range fs {
					asked = asked || strings.EqualFold(f, k)
				}
				if !asked {
					continue // may be there or not: a search reads only what it asked
				}
				w := want.header.Values(k)
				if g := got.header.Values(k); fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("fields %q, %q: %q, ReadHeader %q", fs, k, g, w)
				}
			}
		}
	})
}

// TestHeaderPartMatchesReadHeader: the shapes of the fuzz seeds, as a
// plain test.
func TestHeaderPartMatchesReadHeader(t *testing.T) {
	hdr := "Subject: a\r\n  folded\r\nFrom: x@example.test\r\nSubject: second\r\n\r\n"
	p := headerPart([]byte(hdr), []string{"subject"})
	h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	if p.header.Get("Subject") != h.Get("Subject") || fmt.Sprint(p.header.Values("Subject")) != fmt.Sprint(h.Values("Subject")) ||
		p.header.Has("From") {
		t.Fatalf("%q %q", p.header.Values("Subject"), p.header.Get("From"))
	}
}
