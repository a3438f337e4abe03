package smtpd

import (
	"bytes"
	"strings"
	"testing"
)

func TestLineFilter(t *testing.T) {
	long := strings.Repeat("x", 998)
	tests := []struct {
		name    string
		in      []string // written in these pieces
		maxLine int
		maxHops int
		want    string // output, when no fault
		fault   error
	}{
		{name: "crlf to lf", in: []string{"a: b\r\n\r\nbody\r\n"}, want: "a: b\n\nbody\n"},
		{name: "cr lf split across writes", in: []string{"a\r", "\nb\r", "\n"}, want: "a\nb\n"},
		{name: "empty", in: nil, want: ""},
		{name: "no final crlf (BDAT)", in: []string{"a\r\nb"}, want: "a\nb\n"},
		{name: "bare lf", in: []string{"a\nb\r\n"}, fault: errBareNewline},
		{name: "bare lf dot smuggling", in: []string{"a\r\n\n.\r\nMAIL FROM:<x@y>\r\n"}, fault: errBareNewline},
		{name: "dot lf smuggling (dot removed by go-smtp)", in: []string{"a\r\n\nMAIL\r\n"}, fault: errBareNewline},
		{name: "bare cr", in: []string{"a\rb\r\n"}, fault: errBareNewline},
		{name: "cr cr lf", in: []string{"a\r\r\n"}, fault: errBareNewline},
		{name: "cr at end", in: []string{"a\r"}, fault: errBareNewline},
		{name: "cr at end of write, then not lf", in: []string{"a\r", "b\r\n"}, fault: errBareNewline},
		{name: "line at limit", in: []string{long + "\r\n"}, maxLine: 1000, want: long + "\n"},
		{name: "line over limit", in: []string{long + "x\r\n"}, maxLine: 1000, fault: errLineTooLong},
		{name: "hops at limit", in: []string{"Received: a\r\nreceived: b\r\n\r\nReceived: in body\r\n"}, maxHops: 2,
			want: "Received: a\nreceived: b\n\nReceived: in body\n"},
		{name: "hops over limit", in: []string{"Received: a\r\nRECEIVED: b\r\nReceived: c\r\n\r\n"}, maxHops: 2, fault: errLoop},
		{name: "fault then more data", in: []string{"a\n", "b\r\n", "c\rd"}, fault: errBareNewline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			f := newLineFilter(&out, tt.maxLine, tt.maxHops)
			size := 0
			for _, p := range tt.in {
				n, err := f.Write([]byte(p))
				if err != nil || n != len(p) {
					t.Fatalf("Write(%q) = %d, %v", p, n, err)
				}
				size += n
			}
			err := f.Close()
			if err != tt.fault {
				t.Fatalf("Close() = %v, want %v", err, tt.fault)
			}
			if f.size != int64(size) {
				t.Errorf("size = %d, want %d", f.size, size)
			}
			if tt.fault == nil && out.String() != tt.want {
				t.Errorf("output %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestSpoolToFile(t *testing.T) {
	sp := &spool{dir: t.TempDir()}
	chunk := bytes.Repeat([]byte("0123456789abcde\n"), 4096) // 64 KiB
	var want bytes.Buffer
	for range spoolMem/len(chunk) + 3 {
		if _, err := sp.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want.Write(chunk)
	}
	if sp.file == nil {
		t.Fatal("spool stayed in memory past spoolMem")
	}
	r, err := sp.Reader()
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("read back %d octets, want %d", got.Len(), want.Len())
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReceivedParts(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":   "[192.0.2.1]",
		"2001:db8::1": "[IPv6:2001:db8::1]",
	} {
		if got := addressLiteral(in); got != want {
			t.Errorf("addressLiteral(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"mail.example.test":      "mail.example.test",
		"[192.0.2.1]":            "[192.0.2.1]",
		"evil\r\nX-Forged: yes":  "evil??X-Forged:?yes",
		"a(comment)b\\":          "a?comment?b?",
		"jörg.example":           "jörg.example",
		strings.Repeat("h", 300): strings.Repeat("h", 255),
	} {
		if got := headerSafe(in); got != want {
			t.Errorf("headerSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzLineFilter: however the data is cut into writes (one piece, octet by
// octet, or two pieces), the filter passes the same text and finds the same
// fault. It checks the run-based scanner against itself at the finest grain.
func FuzzLineFilter(f *testing.F) {
	for _, s := range []string{"a: b\r\n\r\nbody\r\n", "a\r\n\n.\r\n", "a\rb\r\n", "Received: x\r\nReceived: y\r\n\r\n", "x\r", strings.Repeat("y", 40) + "\r\n"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		run := func(pieces [][]byte) (string, error) {
			var out bytes.Buffer
			lf := newLineFilter(&out, 32, 2)
			for _, p := range pieces {
				if n, err := lf.Write(p); n != len(p) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", p, n, err)
				}
			}
			err := lf.Close()
			if err != nil {
				return "", err
			}
			return out.String(), nil
		}
		whole, werr := run([][]byte{data})
		var octets [][]byte
		for i := range data {
			octets = append(octets, data[i:i+1])
		}
		one, oerr := run(octets)
		c := int(cut) % (len(data) + 1)
		two, terr := run([][]byte{data[:c], data[c:]})
		if whole != one || whole != two || werr != oerr || werr != terr {
			t.Fatalf("%q: whole %q %v, octets %q %v, cut at %d %q %v", data, whole, werr, one, oerr, c, two, terr)
		}
	})
}
