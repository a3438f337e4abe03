package mailstore

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readMaildirsizeFile(t *testing.T, s *Store) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Root, MaildirsizeName))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ageFolders sets the times of every folder's cur/ and new/ to when.
func ageFolders(t *testing.T, s *Store, when time.Time) {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(s.Root, "*", "[cn][ue][rw]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append(dirs, filepath.Join(s.Root, "cur"), filepath.Join(s.Root, "new")) {
		if err := os.Chtimes(d, when, when); err != nil {
			t.Fatal(err)
		}
	}
}

func writeMaildirsizeFile(t *testing.T, s *Store, text string, mtime time.Time) {
	t.Helper()
	p := filepath.Join(s.Root, MaildirsizeName)
	if err := os.WriteFile(p, []byte(text), 0600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// The Maildir++ rules: maildirsize is made by a scan, then summed without
// one; it is rebuilt when its limit is another, when it is malformed,
// when it reaches 5120 bytes, and when it says "over quota" but may be
// stale.
func TestMaildirsize(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 3)
	size, count, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	use, err := s.Quota(1000, 0)
	if err != nil || use != (QuotaUse{1000, size, 3}) || count != 3 {
		t.Fatalf("first use: %+v %v (scan: %d %d)", use, err, size, count)
	}
	if got, want := readMaildirsizeFile(t, s), "1000S\n"+strconv.FormatInt(size, 10)+" 3\n"; got != want {
		t.Fatalf("maildirsize %q, want %q", got, want)
	}
	// Appended lines are summed, and a line being written is left out.
	if err := s.AddQuota(100, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AddQuota(-40, -1); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(s.Root, MaildirsizeName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("77"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if use, err := s.Quota(1000, 0); err != nil || use != (QuotaUse{1000, size + 60, 3}) {
		t.Errorf("summed: %+v %v", use, err)
	}
	// Rebuilt: another limit, garbage, 5120 bytes.
	for name, text := range map[string]string{
		"other limit": "2000S\n0 0\n",
		"garbage":     "1000S\nfoo bar\n",
		"no limit":    "10C\n0 0\n",
		"too big":     "1000S\n" + strings.Repeat("1 0\n", 5120/4),
	} {
		writeMaildirsizeFile(t, s, text, time.Now())
		if use, err := s.Quota(1000, 0); err != nil || use != (QuotaUse{1000, size, 3}) {
			t.Errorf("%s: %+v %v", name, use, err)
		}
		if got := readMaildirsizeFile(t, s); !strings.HasPrefix(got, "1000S\n") || len(got) > 20 {
			t.Errorf("%s: not rebuilt: %q", name, got)
		}
	}
	// Over quota: a file newer than cur/ and new/ and recent is believed;
	// an old one, or one older than either, is checked.
	curTime := time.Now().Add(-time.Hour)
	ageFolders(t, s, curTime)
	writeMaildirsizeFile(t, s, "1000S\n5000 9\n", time.Now().Add(-time.Minute))
	if use, err := s.Quota(1000, 0); err != nil || use.Size != 5000 {
		t.Errorf("recent, over: %+v %v", use, err)
	}
	writeMaildirsizeFile(t, s, "1000S\n5000 9\n", time.Now().Add(-16*time.Minute))
	if use, err := s.Quota(1000, 0); err != nil || use.Size != size {
		t.Errorf("stale, over: %+v %v", use, err)
	}
	writeMaildirsizeFile(t, s, "1000S\n5000 9\n", curTime.Add(-time.Second))
	if use, err := s.Quota(1000, 0); err != nil || use.Size != size {
		t.Errorf("older than cur/, over: %+v %v", use, err)
	}
	// Not over, but the message to come does not fit: the same.
	writeMaildirsizeFile(t, s, "1000S\n900 9\n", time.Now().Add(-time.Minute))
	if use, err := s.Quota(1000, 50); err != nil || use.Size != 900 {
		t.Errorf("recent, fits: %+v %v", use, err)
	}
	writeMaildirsizeFile(t, s, "1000S\n900 9\n", curTime.Add(-time.Second))
	if use, err := s.Quota(1000, 50); err != nil || use.Size != 900 {
		t.Errorf("older than cur/, fits: %+v %v", use, err)
	}
	if use, err := s.Quota(1000, 200); err != nil || use.Size != size {
		t.Errorf("older than cur/, does not fit: %+v %v", use, err)
	}
	// No file: AddQuota leaves it to the next Quota.
	if err := os.Remove(filepath.Join(s.Root, MaildirsizeName)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddQuota(1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root, MaildirsizeName)); !os.IsNotExist(err) {
		t.Errorf("AddQuota made maildirsize: %v", err)
	}
}

// FuzzMaildirsize: a damaged maildirsize (another program's, a crash
// mid-write) asks for a rebuild or sums, never panics.
func FuzzMaildirsize(f *testing.F) {
	for _, s := range []string{"1024S\n0 0\n", "1024S,10C\n100 1\n-50 -1\n12", "10C\n", "S\n", "\n\n", "99999999999999999999S\n1 1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		use, err := parseMaildirsize(data)
		if err == nil && use.Limit < -1 {
			t.Fatalf("limit %d", use.Limit)
		}
	})
}

// QuotaFull (smtpd's read-only look) believes only a recent file for a
// mailbox unchanged since, and never writes.
func TestQuotaFull(t *testing.T) {
	s := newStore(t)
	if s.QuotaFull(10) {
		t.Error("full without maildirsize")
	}
	if _, err := os.Stat(filepath.Join(s.Root, MaildirsizeName)); !os.IsNotExist(err) {
		t.Errorf("QuotaFull wrote maildirsize: %v", err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.MkdirAll(filepath.Join(s.Root, ".Trash", "cur"), 0o700); err != nil {
		t.Fatal(err)
	}
	ageFolders(t, s, old)
	for _, c := range []struct {
		text  string
		age   time.Duration
		limit int64
		full  bool
	}{
		{"2000S\n1000 3\n", time.Minute, 1000, true}, // the sum counts, whatever the limit line
		{"1000S\n999 3\n", time.Minute, 1000, false},
		{"1000S\n1500 3\n", 20 * time.Minute, 1000, false}, // stale
		{"1000S\n1500 3\n", 2 * time.Hour, 1000, false},    // older than new/ and cur/
		{"1000S\n1500 x\n", time.Minute, 1000, false},      // damaged
	} {
		writeMaildirsizeFile(t, s, c.text, time.Now().Add(-c.age))
		if got := s.QuotaFull(c.limit); got != c.full {
			t.Errorf("%q, %v old, limit %d: full=%v", c.text, c.age, c.limit, got)
		}
	}
	// Room freed in another folder (Trash emptied after the count was
	// written) makes the count doubtful as well.
	writeMaildirsizeFile(t, s, "1000S\n1500 3\n", time.Now().Add(-time.Minute))
	if !s.QuotaFull(1000) {
		t.Fatal("full before Trash changed")
	}
	if err := os.Chtimes(filepath.Join(s.Root, ".Trash", "cur"), time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if s.QuotaFull(1000) {
		t.Error("still full after Trash changed")
	}
}

// TestQuotaAccounted: APPEND, COPY, MOVE (a copy and an expunge) and
// EXPUNGE append their changes to maildirsize, which then agrees with a
// scan without one; an expunge of a message another process removed
// first counts nothing.
func TestQuotaAccounted(t *testing.T) {
	s := newStore(t)
	deliver(t, s.Root, 2)
	if _, err := s.RecalcQuota(1 << 20); err != nil {
		t.Fatal(err)
	}
	in := inbox(t, s)
	if _, _, err := in.Sync(true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := in.Append([]byte("Subject: appended\r\n\r\nbody\r\n"), "S", time.Now()); err != nil {
		t.Fatal(err)
	}
	snap, _, err := in.Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	trash, err := s.Folder("Trash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.CopyTo(trash, snap.Msgs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := in.Expunge([]string{snap.Msgs[0].Base}); err != nil {
		t.Fatal(err)
	}
	other := inbox(t, s)
	if _, _, err := other.Sync(true); err != nil {
		t.Fatal(err)
	}
	if err := other.Expunge([]string{snap.Msgs[1].Base}); err != nil {
		t.Fatal(err)
	}
	if err := in.Expunge([]string{snap.Msgs[1].Base}); err != nil { // gone already
		t.Fatal(err)
	}
	use, _, err := s.readMaildirsize()
	if err != nil {
		t.Fatal(err)
	}
	size, count, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if use.Size != size || use.Count != int64(count) || count != 3 {
		t.Fatalf("maildirsize says %d bytes in %d, a scan %d in %d:\n%s", use.Size, use.Count, size, count, readMaildirsizeFile(t, s))
	}
	if lines := strings.Count(readMaildirsizeFile(t, s), "\n"); lines != 6 {
		t.Fatalf("%d lines, want the limit, the scan and 4 changes:\n%s", lines, readMaildirsizeFile(t, s))
	}
}
