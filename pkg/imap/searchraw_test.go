package imap

import (
	"bytes"
	"testing"
)

// FuzzHeaderMatch holds matchHeaderRaw to the parsed path it replaces
// (headerPart, then matchHeaderParsed): the same answer whenever it takes
// the header, and it takes every header that splitFields takes.
func FuzzHeaderMatch(f *testing.F) {
	f.Add([]byte("Subject: the Budget Review\r\n\r\n"), "subject", "budget review")
	f.Add([]byte("Subject: the budget\r\n  review\r\n\tnotes\r\n\r\nbody"), "SUBJECT", "budget review")
	f.Add([]byte("Subject: x\r\nSubject: second budget\r\n\r\n"), "Subject", "BUDGET")
	f.Add([]byte("Subject: =?UTF-8?Q?caf=C3=A9_budget?=\r\n\r\n"), "Subject", "CAFÉ")
	f.Add([]byte("Subject: Straße\r\n\r\n"), "subject", "STRASSE")
	f.Add([]byte("Subject: \xffbad\r\n\r\n"), "subject", "bad")
	f.Add([]byte("X-a_b: v\r\nx-A_B: w\r\n\r\n"), "X-A_B", "w")
	f.Add([]byte("X@y: v\r\nx@Y: w\r\n\r\n"), "x@Y", "v")
	f.Add([]byte(" continues\r\nSubject: a\r\n\r\n"), "Subject", "a")
	f.Add([]byte("From: a\r\nnot a field\r\nSubject: b\r\n\r\n"), "Subject", "b")
	f.Add([]byte("Subject: no blank line\r\n"), "Subject", "blank")
	f.Add([]byte("Subject:\r\n \r\n\t\r\n\r\n"), "Subject", "")
	f.Add([]byte("To: a\r\n\r\n"), "Subject", "")
	f.Add([]byte("\r\n"), "Subject", "")
	f.Add([]byte("Subject: a \r b\r\nSubject:   c\r\n\r\n"), "subject", "a \r b")
	f.Add([]byte("Subject: x\r\n \r\n y \r\n\r\n"), "subject", "x y")
	f.Fuzz(func(t *testing.T, data []byte, field, value string) {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")) // as stored messages are read
		hm := newHeaderMatcher(field, value)
		got, ok := hm.matchHeaderRaw(data)
		hdr := data[:headerLen(data)]
		if _, split := splitFields(hdr, []string{field}); ok != split {
			t.Fatalf("taken %v, splitFields %v", ok, split)
		}
		if !ok {
			return
		}
		want := matchHeaderParsed(headerPart(data, []string{field}).header, field, value)
		if got != want {
			t.Fatalf("%q %q in %q: %v, parsed %v", field, value, data, got, want)
		}
		if again, _ := hm.matchHeaderRaw(data); again != got { // hm's buffer reused
			t.Fatalf("second match %v", again)
		}
	})
}
