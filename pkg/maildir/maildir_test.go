package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestDeliver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	if err := Create(dir); err != nil {
		t.Fatalf("Create is not idempotent: %v", err)
	}
	for _, f := range SpecialFolders {
		if _, err := os.Stat(filepath.Join(dir, "."+f.Name, "maildirfolder")); err != nil {
			t.Errorf("folder %s: %v", f.Name, err)
		}
	}
	path, err := Deliver(dir, []byte("Return-Path: <a@b>\n"), strings.NewReader("Subject: x\r\n\nbody\n"))
	if err != nil {
		t.Fatal(err)
	}
	// 19 + 18 bytes; 4 line feeds, one of them after a CR.
	if !regexp.MustCompile(`/new/\d+\.M\d+P\d+Q\d+R[0-9a-f]{8}\.[^/]+,S=37,W=40$`).MatchString(path) {
		t.Errorf("file name %s", path)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "Return-Path: <a@b>\nSubject: x\r\n\nbody\n" {
		t.Errorf("content %q %v", data, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty after delivery: %v", ents)
	}
}

func TestDeliverFailures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	var te *TempError
	if _, err := Deliver(dir, nil, strings.NewReader("x")); !errors.As(err, &te) {
		t.Errorf("missing Maildir: %v, want a TempError", err)
	}
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	_, err := Deliver(dir, nil, iotest.ErrReader(errors.New("client went away")))
	if err == nil || errors.As(err, &te) {
		t.Errorf("reader failure: %v, want the reader's error", err)
	}
	for _, sub := range []string{"tmp", "new"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ not empty after a failed delivery: %v", sub, ents)
		}
	}
}

func TestUniqueNames(t *testing.T) {
	seen := map[string]bool{}
	now := time.Now()
	for i := 0; i < 10000; i++ {
		n := UniqueName(now)
		if seen[n] || strings.ContainsAny(n, "/:") {
			t.Fatalf("name %q repeated or unsafe", n)
		}
		seen[n] = true
	}
}

func TestCountWriterSplitCRLF(t *testing.T) {
	for _, chunks := range [][]string{
		{"a\r", "\nb\n"}, {"a\r\n", "b\n"}, {"\r", "\n", "\n"}, {"x\n\r", "\r\n"},
	} {
		var cw countWriter
		cw.w = &strings.Builder{}
		joined := strings.Join(chunks, "")
		for _, c := range chunks {
			if _, err := cw.Write([]byte(c)); err != nil {
				t.Fatal(err)
			}
		}
		want := int64(strings.Count(joined, "\n") - strings.Count(joined, "\r\n"))
		if cw.bareLF != want || cw.n != int64(len(joined)) {
			t.Errorf("%q: bareLF %d n %d, want %d %d", chunks, cw.bareLF, cw.n, want, len(joined))
		}
	}
}

// Store for IMAP APPEND: into cur/ with flags and a date, CRLF stored as
// LF however the input is cut, sizes in the name counted on what is stored.
func TestStoreToLF(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	in := "Subject: a\r\n\r\nx\ry\r\r\nend\r"
	path, err := Store(dir, Options{Cur: true, Flags: "S", MTime: date, ToLF: true}, nil, iotest.OneByteReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := "Subject: a\n\nx\ry\r\nend\r"
	data, _ := os.ReadFile(path)
	if string(data) != want {
		t.Errorf("stored %q, want %q", data, want)
	}
	wantName := fmt.Sprintf(",S=%d,W=%d:2,S", len(want), len(want)+strings.Count(want, "\n")-strings.Count(want, "\r\n"))
	if filepath.Base(filepath.Dir(path)) != "cur" || !strings.HasSuffix(path, wantName) {
		t.Errorf("path %s, want cur/...%s", path, wantName)
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(date) {
		t.Errorf("mtime %v, %v", fi.ModTime(), err)
	}
}
