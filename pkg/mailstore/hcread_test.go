package mailstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FuzzHeaderEnd holds headerEnd to readHeaderBlock: the same header of
// any data, up to maxHeader bytes of it; and an end found in a part of
// the data read so far (cut) is the end of the whole. And appendCRLF to
// ToCRLF.
func FuzzHeaderEnd(f *testing.F) {
	f.Add([]byte("Subject: a\n\nbody\n"), 5)
	f.Add([]byte("Subject: a\r\n\r\nbody"), 14)
	f.Add([]byte("Subject: a\r\r\n\r\r\nbody"), 0)
	f.Add([]byte("Subject: no blank line\n"), 3)
	f.Add([]byte("Subject: no end"), 100)
	f.Add([]byte("\nbody"), 1)
	f.Add([]byte("a\r\n\n\r\r\nb\n\n"), 1)
	f.Add([]byte("X: "+strings.Repeat("a", 4093)+"\n\nbody"), 4097)
	f.Add([]byte("X: "+strings.Repeat("a", 4092)+"\n\nbody"), 4096)
	f.Add([]byte("X: "+strings.Repeat("a", 4094)+"\r\n\r\nbody"), 4098)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if len(data) > 2*maxHeader {
			return
		}
		want, err := readHeaderBlock(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := appendCRLF([]byte("x"), data), ToCRLF(data); string(got) != "x"+string(want) {
			t.Fatalf("appendCRLF %q, ToCRLF %q", got, want)
		}
		b := data[:min(len(data), maxHeader)]
		end, found := headerEnd(b)
		if !bytes.Equal(b[:end], want) || !found && end != len(b) {
			t.Fatalf("headerEnd %d (%v), readHeaderBlock %d bytes", end, found, len(want))
		}
		if cut < 0 || cut > len(b) {
			return
		}
		if e, ok := headerEnd(b[:cut]); ok && (e != end || !found) {
			t.Fatalf("in %d bytes: %d, in all: %d (%v)", cut, e, end, found)
		}
	})
}

// TestReadHeaderFile: files read with the system calls and the reused
// buffer give what readHeaderBlock reads from them, around the sizes
// where the reading goes on (the first read, bufio's 4096-byte pieces,
// maxHeader), and a missing file is os.ErrNotExist.
func TestReadHeaderFile(t *testing.T) {
	dir := t.TempDir()
	long := func(n int) string { return "X-Long: " + strings.Repeat("v", n) + "\n" }
	bodies := []string{
		"Subject: small\n\nbody\n",
		"Subject: no body\n",
		"",
		"\n\n",
		long(headerFirstRead-10) + "\nbody",
		long(headerFirstRead-9) + "\nbody",
		long(headerFirstRead) + "\nbody",
		long(4096-9) + "\nbody",
		long(4096-8) + "\nbody",
		strings.Repeat(long(1000), 300) + "\nbody", // past maxHeader
		strings.Repeat(long(100), 200) + "\r\n\r\nbody",
	}
	hc := newHeaderCache()
	for i, body := range bodies {
		p := filepath.Join(dir, "m")
		if err := os.WriteFile(p, []byte(body), 0600); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		got, err := hc.readHeaderFile(dir, p, &st)
		if err != nil {
			t.Fatal(err)
		}
		want, err := readHeaderBlock(strings.NewReader(body))
		if err != nil || !bytes.Equal(got, want) || st.Size != int64(len(body)) {
			t.Fatalf("file %d: %d bytes (size %d), readHeaderBlock %d", i, len(got), st.Size, len(want))
		}
	}
	if !hc.hasDir {
		t.Fatal("files not opened relative to their directory")
	}
	hc.closeDir()
	var st syscall.Stat_t
	_, err := hc.readHeaderFile(dir, filepath.Join(dir, "missing"), &st)
	hc.closeDir()
	if !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
}
