package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
)

// hcMessages are headers of every shape the cache must answer as the
// files do: small (kept whole), large (kept as fields), folded and
// repeated fields, encoded words, a line that is not a field, no blank
// line, a continuation line first.
func hcMessages() []string {
	received := strings.Repeat("Received: from relay.example.net (relay.example.net [192.0.2.7])\n\tby mx.example.test with ESMTPS id 4F2A; Tue, 3 Feb 2026 10:00:00 +0000\n", 20)
	return []string{
		"From: a@example.test\nSubject: small one\nDate: Tue, 3 Feb 2026 10:00:00 +0000\n\nbody\n",
		received + "From: =?UTF-8?B?U8O4cmVu?= <s@example.test>\nTo: x@example.test,\n  y@example.test\nSubject: budget review\n  folded\nX-Other: not cached\nMessage-ID: <1@example.test>\nSubject: second subject\n\nbody\n",
		received + "From: b@example.test\nthis line is no field\nSubject: broken header\n\nbody\n",
		"Subject: no body and no blank line\nFrom: c@example.test\n",
		received + "Subject: only large\nDKIM-Signature: v=1; a=rsa-sha256;\n\tb=" + strings.Repeat("A", 3000) + "\n\nbody\n",
		" continuation first\nSubject: odd\n\nbody\n",
	}
}

// hcStore makes a folder with hcMessages, numbered and settled.
func hcStore(t *testing.T) (*Store, Snapshot) {
	t.Helper()
	s := newStore(t)
	for _, m := range hcMessages() {
		if _, err := maildir.Deliver(s.Root, []byte(m), strings.NewReader("")); err != nil {
			t.Fatal(err)
		}
	}
	snap, _, err := inbox(t, s).Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // settled: batches trust the listing
	return s, snap
}

// fieldLines returns the lines (with continuations) of the named fields
// of a header, or all of it for nil.
func fieldLines(hdr []byte, fields []string) string {
	if fields == nil {
		return string(hdr)
	}
	var out strings.Builder
	in := false
	for _, line := range strings.SplitAfter(string(hdr), "\r\n") {
		if line == "\r\n" || line == "" {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(line, ":")
			in = false
			for _, f := range fields {
				in = in || strings.EqualFold(f, name)
			}
		}
		if in {
			out.WriteString(line)
		}
	}
	return out.String()
}

var hcFieldSets = [][]string{
	{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-ID"},
	{"subject"}, {"X-Other"}, {"Subject", "DKIM-Signature"}, nil, {},
}

// checkHeaders reads every message's header in one batch of a new Folder
// (a new session) for each field set, checks it against the file, and
// returns the Folder's cache.
func checkHeaders(t *testing.T, s *Store, snap Snapshot) *headerCache {
	t.Helper()
	f := inbox(t, s)
	if _, _, err := f.Sync(false); err != nil {
		t.Fatal(err)
	}
	end := f.HeaderBatch()
	for _, m := range snap.Msgs {
		want, wantTime, err := f.ReadHeader(m.Base)
		if err != nil {
			t.Fatal(err)
		}
		for _, fields := range hcFieldSets {
			got, gotTime, err := f.ReadHeaderFields(m.Base, fields)
			if err != nil {
				t.Fatal(err)
			}
			if fieldLines(got, fields) != fieldLines(want, fields) || !gotTime.Equal(wantTime) {
				t.Fatalf("UID %d, fields %q:\n%q %v\nfile:\n%q %v", m.UID, fields, got, gotTime, want, wantTime)
			}
			if fields != nil && !bytes.HasSuffix(got, []byte("\r\n\r\n")) && !bytes.Equal(got, want) {
				t.Fatalf("UID %d: no blank line at the end: %q", m.UID, got)
			}
		}
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	return f.hc
}

// cacheFileOK reads the cache file as a new Folder would and reports its
// entries, failing on any damage.
func cacheFileOK(t *testing.T, s *Store) int {
	t.Helper()
	hc := newHeaderCache()
	if err := hc.refresh(s.Root, 0); err != nil {
		t.Fatal(err)
	}
	if hc.fh != nil {
		defer hc.fh.Close()
	}
	fi, err := os.Stat(filepath.Join(s.Root, HeaderCacheName))
	if err != nil || hc.damaged || hc.end != fi.Size() {
		t.Fatalf("cache file: %v, %s, size %v", err, hc, fi)
	}
	return len(hc.m)
}

// TestHeaderCacheAnswers: what the cache answers is what the files say,
// cold and warm; the warm answers come from the cache.
func TestHeaderCacheAnswers(t *testing.T) {
	s, snap := hcStore(t)
	checkHeaders(t, s, snap)
	// Every one is kept but the large header with a line that is no
	// field (the odd small ones are kept whole).
	if n := cacheFileOK(t, s); n != len(snap.Msgs)-1 {
		t.Fatalf("%d entries for %d messages", n, len(snap.Msgs))
	}
	checkHeaders(t, s, snap)

	// A change the cache cannot see (in place, same inode, size and
	// mtime) shows that a warm session answers from it.
	m := snap.Msgs[0]
	f := inbox(t, s)
	if _, _, err := f.Sync(false); err != nil {
		t.Fatal(err)
	}
	p, err := f.path(m.Base, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(data, []byte("small one"), []byte("SMALL ONE"), 1), 0600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	end := f.HeaderBatch()
	got, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"})
	if err := end(); err != nil {
		t.Fatal(err)
	}
	if err != nil || !bytes.Contains(got, []byte("small one")) {
		t.Fatalf("warm read did not come from the cache: %q, %v", got, err)
	}
}

// TestHeaderCacheDamage: a cache file deleted, truncated, overwritten or
// with garbage appended is ignored where it is bad, the answers stay
// right, and the next write leaves a good file with every entry.
func TestHeaderCacheDamage(t *testing.T) {
	s, snap := hcStore(t)
	checkHeaders(t, s, snap)
	path := filepath.Join(s.Root, HeaderCacheName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damage := []struct {
		name string
		data []byte
	}{
		{"deleted", nil},
		{"empty", []byte{}},
		{"truncated", good[:len(good)/2]},
		{"magic only", []byte(hcMagic)},
		{"garbage", bytes.Repeat([]byte("garbage\x00\n"), 100)},
		{"garbage appended", append(bytes.Clone(good), "0000beef 12\nnot a record"...)},
		{"flipped byte", func() []byte { b := bytes.Clone(good); b[len(b)/2] ^= 0x20; return b }()},
		{"bad length", bytes.Replace(good, []byte(" "), []byte(" 9"), 1)},
	}
	for _, d := range damage {
		var err error
		if d.data == nil {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, d.data, 0600)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Log(d.name)
		checkHeaders(t, s, snap)
		if n := cacheFileOK(t, s); n != len(snap.Msgs)-1 {
			t.Fatalf("%s: rebuilt with %d entries for %d messages", d.name, n, len(snap.Msgs))
		}
	}
}

// TestHeaderCacheOtherProcess: a message replaced, expunged or re-flagged
// by another process (another Folder, as another session or process would
// be) is never answered from the entry made before, by a session that
// had read it (its cache warm) nor by a new one.
func TestHeaderCacheOtherProcess(t *testing.T) {
	s, snap := hcStore(t)
	a := inbox(t, s) // the session that stays
	if _, _, err := a.Sync(true); err != nil {
		t.Fatal(err)
	}
	end := a.HeaderBatch()
	for _, m := range snap.Msgs {
		if _, _, err := a.ReadHeaderFields(m.Base, []string{"Subject"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
	replaced, expunged, flagged := snap.Msgs[0], snap.Msgs[1], snap.Msgs[4]

	b := inbox(t, s) // the other process
	if _, _, err := b.Sync(true); err != nil {
		t.Fatal(err)
	}
	p, err := b.path(replaced.Base, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	replaceFile(t, s, p, "From: a@example.test\nSubject: REPLACED\n\nbody\n", fi.ModTime())
	if err := b.Expunge([]string{expunged.Base}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetFlags(flagged.Base, func(o Flags) Flags { return o.With("F", "") }); err != nil {
		t.Fatal(err)
	}

	check := func(who string, f *Folder) {
		t.Helper()
		end := f.HeaderBatch()
		defer func() {
			if err := end(); err != nil {
				t.Fatal(err)
			}
		}()
		got, _, err := f.ReadHeaderFields(replaced.Base, []string{"Subject"})
		if err != nil || !bytes.Contains(got, []byte("REPLACED")) {
			t.Fatalf("%s: replaced message answered %q, %v", who, got, err)
		}
		if got, _, err := f.ReadHeaderFields(expunged.Base, []string{"Subject"}); !errors.Is(err, ErrGone) {
			t.Fatalf("%s: expunged message answered %q, %v", who, got, err)
		}
		got, _, err = f.ReadHeaderFields(flagged.Base, []string{"Subject"})
		if err != nil || !bytes.Contains(got, []byte("Subject: only large")) {
			t.Fatalf("%s: re-flagged message answered %q, %v", who, got, err)
		}
	}
	check("the session that read them", a) // before any Sync: its listing is old
	c := inbox(t, s)
	if _, _, err := c.Sync(true); err != nil {
		t.Fatal(err)
	}
	check("a new session", c)
	time.Sleep(1100 * time.Millisecond) // settled: the listing is trusted again
	forgetListings()
	d := inbox(t, s)
	if _, _, err := d.Sync(true); err != nil {
		t.Fatal(err)
	}
	check("a new session after a second", d)
	if n := cacheFileOK(t, s); n < len(snap.Msgs)-1 {
		t.Fatalf("%d entries", n)
	}
}

// TestHeaderCacheLimits: an entry whose fields pass hcMaxEntry is not
// kept, and nothing is appended that would take the file past hcMaxFile;
// the answers are the files' either way.
func TestHeaderCacheLimits(t *testing.T) {
	s := newStore(t)
	huge := "Received: x\nSubject: " + strings.Repeat("long ", 2000) + "\nFrom: a@example.test\n\nbody\n"
	for _, m := range []string{huge, "Subject: small\n\nbody\n"} {
		if _, err := maildir.Deliver(s.Root, []byte(m), strings.NewReader("")); err != nil {
			t.Fatal(err)
		}
	}
	snap, _, err := inbox(t, s).Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	checkHeaders(t, s, snap)
	if n := cacheFileOK(t, s); n != 1 {
		t.Fatalf("%d entries: the one over %d bytes was kept", n, hcMaxEntry)
	}

	old := hcMaxFile
	t.Cleanup(func() { hcMaxFile = old })
	path := filepath.Join(s.Root, HeaderCacheName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	hcMaxFile = fi.Size() + 10 // no room for one more record
	if _, err := maildir.Deliver(s.Root, []byte("Subject: third\n\nbody\n"), strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	if snap, _, err = inbox(t, s).Sync(true); err != nil {
		t.Fatal(err)
	}
	checkHeaders(t, s, snap)
	if after, err := os.Stat(path); err != nil || after.Size() != fi.Size() {
		t.Fatalf("the file grew past its limit: %v, %v", after, err)
	}
}

// TestCachedFieldNames: every cached field is found in any case (the
// lookup bounds names to 16 bytes).
func TestCachedFieldNames(t *testing.T) {
	for k := range cachedFields {
		if !isCachedField(strings.ToUpper(k)) || !isCachedField(k) || strings.ToLower(k) != k {
			t.Errorf("%q not found", k)
		}
	}
	if isCachedField("X-Other") || isCachedField("Subject-Extended-Field-Name") {
		t.Error("a field not kept is found")
	}
}

// TestHeaderCacheConcurrentWriters: sessions that learn headers at once
// (each its own Folder, as in its own process) append under the lock
// without damaging the file, and every entry ends up in it.
func TestHeaderCacheConcurrentWriters(t *testing.T) {
	const n, writers = 120, 4
	s := newStore(t)
	for i := range n {
		m := fmt.Sprintf("Subject: message %d\nFrom: w%d@example.test\n%s\nbody\n", i, i, strings.Repeat("X-Pad: "+strings.Repeat("p", 60)+"\n", 40))
		if _, err := maildir.Deliver(s.Root, []byte(m), strings.NewReader("")); err != nil {
			t.Fatal(err)
		}
	}
	snap, _, err := inbox(t, s).Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			f, err := s.Folder("INBOX")
			if err == nil {
				_, _, err = f.Sync(false)
			}
			for round := 0; err == nil && round < 5; round++ {
				end := f.HeaderBatch()
				for k := range n / 2 { // half of them, from a different place each time
					m := snap.Msgs[(w*31+round*17+k)%n]
					var got []byte
					if got, _, err = f.ReadHeaderFields(m.Base, []string{"Subject"}); err != nil {
						break
					}
					if want := fmt.Sprintf("Subject: message %d\r\n", m.UID-1); !bytes.Contains(got, []byte(want)) {
						err = fmt.Errorf("UID %d: %q", m.UID, got)
						break
					}
				}
				if eerr := end(); err == nil {
					err = eerr
				}
			}
			errs <- err
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := cacheFileOK(t, s); got != n {
		t.Fatalf("%d entries for %d messages", got, n)
	}
}

// TestHeaderCacheLockHeld: a command does not wait more than hcLockWait
// for the cache's lock: what it learned is dropped, its answers stand.
func TestHeaderCacheLockHeld(t *testing.T) {
	s, snap := hcStore(t)
	lockPath := filepath.Join(s.Root, hcLockName)
	if err := os.WriteFile(lockPath, []byte("held\n"), 0600); err != nil {
		t.Fatal(err)
	}
	f := inbox(t, s)
	if _, _, err := f.Sync(false); err != nil {
		t.Fatal(err)
	}
	end := f.HeaderBatch()
	for _, m := range snap.Msgs {
		want, _, err := f.ReadHeader(m.Base)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"})
		if err != nil || fieldLines(got, []string{"Subject"}) != fieldLines(want, []string{"Subject"}) {
			t.Fatalf("%q, %v", got, err)
		}
	}
	start := time.Now()
	err := end()
	if !errors.Is(err, ErrLockTimeout) || time.Since(start) > 20*hcLockWait {
		t.Fatalf("end with the lock held: %v after %v", err, time.Since(start))
	}
	if _, err := os.Stat(filepath.Join(s.Root, HeaderCacheName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("written without the lock: %v", err)
	}
	if err := os.Remove(lockPath); err != nil {
		t.Fatal(err)
	}
	checkHeaders(t, s, snap)
	if n := cacheFileOK(t, s); n != len(snap.Msgs)-1 {
		t.Fatalf("%d entries after the lock was freed", n)
	}
}

// TestHeaderCacheShared: a later session of the same process takes the
// record places an earlier one read, answers as the files do, and still
// sees a message replaced by another process; the places kept carry
// nothing of the session that kept them.
func TestHeaderCacheShared(t *testing.T) {
	const n = 1200 // past the least worth keeping
	s := newStore(t)
	for i := range n {
		name := fmt.Sprintf("%d.M%dP1Q%d.host,S=40:2,S", 1600000000+i, i, i)
		if err := os.WriteFile(filepath.Join(s.Root, "cur", name), fmt.Appendf(nil, "Subject: number %d\nFrom: x@example.test\n\nbody\n", i), 0600); err != nil {
			t.Fatal(err)
		}
	}
	snap, _, err := inbox(t, s).Sync(true)
	if err != nil {
		t.Fatal(err)
	}
	read := func(f *Folder, m Message) string {
		t.Helper()
		got, _, err := f.ReadHeaderFields(m.Base, []string{"Subject"})
		if err != nil {
			t.Fatal(err)
		}
		return fieldLines(got, []string{"Subject"})
	}
	session := func(check func(f *Folder)) *Folder {
		t.Helper()
		f := inbox(t, s)
		if _, _, err := f.Sync(false); err != nil {
			t.Fatal(err)
		}
		end := f.HeaderBatch()
		check(f)
		if err := end(); err != nil {
			t.Fatal(err)
		}
		return f
	}
	all := func(f *Folder) {
		for _, m := range snap.Msgs {
			if got, want := read(f, m), fmt.Sprintf("Subject: number %d\r\n", m.UID-1); got != want {
				t.Fatalf("UID %d: %q, want %q", m.UID, got, want)
			}
		}
	}
	session(all) // writes the cache
	session(all) // reads it whole, and keeps the places
	c := session(all)
	if c.hc.base == nil || len(c.hc.base.m) != n {
		t.Fatalf("the third session did not take the kept places: %v", c.hc)
	}
	for _, sl := range c.hc.base.m {
		if sl.checked != 0 || sl.pend {
			t.Fatalf("a kept place carries a session's state: %+v", sl)
		}
	}

	m := snap.Msgs[7]
	p := filepath.Join(s.Root, c.names[m.Base])
	replaceFile(t, s, p, "Subject: REPLACED\n\nbody\n", time.Time{})
	d := session(func(f *Folder) {
		if got := read(f, m); got != "Subject: REPLACED\r\n" {
			t.Fatalf("replaced message: %q", got)
		}
	})
	if d.hc.base == nil {
		t.Fatal("the fourth session did not take the kept places")
	}
	if err := os.Remove(filepath.Join(s.Root, HeaderCacheName)); err != nil {
		t.Fatal(err)
	}
	e := session(func(f *Folder) {
		if got := read(f, m); got != "Subject: REPLACED\r\n" {
			t.Fatalf("replaced message, cache deleted: %q", got)
		}
	})
	if e.hc.base != nil && e.hc.base.ino != e.hc.ino {
		t.Fatal("places kept for a file that is gone were used")
	}
}

// TestHeaderCacheStructure: what a session keeps beside a header (imap's
// BODYSTRUCTURE) is given to the next one while the message file is
// unchanged, and not once it was replaced.
func TestHeaderCacheStructure(t *testing.T) {
	s, snap := hcStore(t)
	m := snap.Msgs[1]
	session := func(do func(f *Folder)) {
		t.Helper()
		f := inbox(t, s)
		if _, _, err := f.Sync(false); err != nil {
			t.Fatal(err)
		}
		end := f.HeaderBatch()
		do(f)
		if err := end(); err != nil {
			t.Fatal(err)
		}
	}
	session(func(f *Folder) {
		if _, _, kept, _, ok, err := f.CachedKept(m.Base, []string{"Subject"}); ok && len(kept.Structure) > 0 || err != nil {
			t.Fatalf("a structure before any was kept: %v", err)
		}
		data, _, keep, err := f.ReadWhole(m.Base)
		if err != nil || !bytes.Contains(data, []byte("budget review\r\n")) {
			t.Fatalf("%q, %v", data, err)
		}
		keep.Keep(Kept{Structure: []byte(`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 6 1)`)})
	})
	session(func(f *Folder) {
		hdr, _, st, _, ok, err := f.CachedKept(m.Base, []string{"Subject"})
		if err != nil || !ok || string(st.Structure) != `("TEXT" "PLAIN" NIL NIL NIL "7BIT" 6 1)` || !bytes.Contains(hdr, []byte("Subject: budget review")) {
			t.Fatalf("kept structure: %q %q %v %v", hdr, st, ok, err)
		}
	})
	f := inbox(t, s)
	if _, _, err := f.Sync(false); err != nil {
		t.Fatal(err)
	}
	p, err := f.path(m.Base, false)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, s, p, "Subject: other\n\nbody\n", time.Time{})
	session(func(f *Folder) {
		if _, _, st, _, ok, err := f.CachedKept(m.Base, []string{"Subject"}); ok || err != nil {
			t.Fatalf("the structure of a replaced message: %q, %v", st, err)
		}
	})
}

// replaceFile puts another file with content under the name p, as a tool
// that rewrites a message would (a new inode; mtime when not zero).
func replaceFile(t *testing.T, s *Store, p, content string, mtime time.Time) {
	t.Helper()
	tmp := filepath.Join(s.Root, "tmp", "replacement")
	if err := os.WriteFile(tmp, []byte(content), 0600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}
