package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CleanTmp removes what a dead delivery left in tmp/ for more than 36
// hours and nothing else.
func TestCleanTmp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "box")
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(dir, "tmp", "old"), filepath.Join(dir, "tmp", "fresh")
	for _, f := range []string{old, fresh} {
		if err := os.WriteFile(f, []byte("x"), 0600); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-37 * time.Hour)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	if err := CleanTmp(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("37-hour-old tmp file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh tmp file removed: %v", err)
	}
}
