package safefile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFrom: what write produces replaces the file whole; a write that
// fails leaves the old file and no temporary one.
func TestWriteFrom(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "list")
	if err := os.WriteFile(p, []byte("old\n"), 0600); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 200<<10) // past the buffer: written in several pieces
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	err := WriteFrom(p, 0600, func(w io.Writer) error {
		for i := 0; i < len(big); i += 1000 {
			if _, err := w.Write(big[i:min(i+1000, len(big))]); err != nil {
				return err
			}
		}
		return nil
	})
	if got, _ := os.ReadFile(p); err != nil || string(got) != string(big) {
		t.Fatalf("after WriteFrom: %d bytes, %v", len(got), err)
	}
	failed := errors.New("disk on fire")
	err = WriteFrom(p, 0600, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("a failed write returned %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(big) {
		t.Errorf("a failed write changed the file: %d bytes", len(got))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
