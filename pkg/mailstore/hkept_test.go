package mailstore

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHeaderCacheKept: an envelope kept beside a header, cold (the read
// that made the entry) or warm (an entry made by a search), is given to
// the next session with the header; keeping it again, or a structure,
// keeps the other; the file holds one record per message after a cold
// FETCH (the pending record is replaced, not repeated); a replaced
// message's envelope is not given.
func TestHeaderCacheKept(t *testing.T) {
	s, snap := hcStore(t)
	fields := []string{"Subject", "From"}
	// what is kept of each message: nothing of the third, a large header
	// with a line that is no field, which is not cached
	env := func(i int) []byte {
		if i == 2 {
			return nil
		}
		return []byte(fmt.Sprintf(`("env of %d")`, snap.Msgs[i].UID))
	}
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
	// Cold: nothing kept; the read adds the entry, keep completes it.
	session(func(f *Folder) {
		for i, m := range snap.Msgs[:2] {
			hdr, _, kept, keep, err := f.ReadHeaderKept(m.Base, fields)
			if err != nil || len(kept.Envelope) != 0 || len(kept.Structure) != 0 || len(hdr) == 0 {
				t.Fatalf("cold: %q %q %v", hdr, kept, err)
			}
			keep.Keep(Kept{Envelope: env(i)})
		}
	})
	if n := cacheFileOK(t, s); n != 2 {
		t.Fatalf("%d entries after keeping 2 envelopes", n)
	}
	if hc := newHeaderCache(); hc.refresh(s.Root, 0) != nil || hc.records != 2 {
		t.Fatalf("records: %s", hc)
	}
	// Warm: the envelope comes with the header; the others (entries of
	// a plain read, as a search makes them) have none yet.
	session(func(f *Folder) {
		for _, m := range snap.Msgs[2:] {
			if _, _, err := f.ReadHeaderFields(m.Base, fields); err != nil {
				t.Fatal(err)
			}
		}
	})
	session(func(f *Folder) {
		for i, m := range snap.Msgs {
			want, _, err := f.ReadHeader(m.Base)
			if err != nil {
				t.Fatal(err)
			}
			hdr, _, kept, keep, err := f.ReadHeaderKept(m.Base, fields)
			if err != nil || fieldLines(hdr, fields) != fieldLines(want, fields) {
				t.Fatalf("UID %d: %q, %v; file %q", m.UID, hdr, err, want)
			}
			if i < 2 && !bytes.Equal(kept.Envelope, env(i)) || i >= 2 && len(kept.Envelope) != 0 {
				t.Fatalf("UID %d: kept %q", m.UID, kept.Envelope)
			}
			keep.Keep(Kept{Envelope: env(i)})
		}
		// a structure kept later does not lose the envelope
		m := snap.Msgs[0]
		_, _, keep, err := f.ReadWhole(m.Base)
		if err != nil {
			t.Fatal(err)
		}
		keep.Keep(Kept{Structure: []byte(`("TEXT" "PLAIN")`)})
	})
	session(func(f *Folder) {
		for i, m := range snap.Msgs {
			_, _, kept, _, err := f.ReadHeaderKept(m.Base, fields)
			if err != nil || !bytes.Equal(kept.Envelope, env(i)) {
				t.Fatalf("UID %d: kept %q, %v", m.UID, kept.Envelope, err)
			}
		}
		_, _, kept, _, ok, err := f.CachedKept(snap.Msgs[0].Base, fields)
		if err != nil || !ok || string(kept.Structure) != `("TEXT" "PLAIN")` || !bytes.Equal(kept.Envelope, env(0)) {
			t.Fatalf("structure and envelope: %q %v %v", kept, ok, err)
		}
	})

	// Replaced (another file under the base name): nothing kept is given.
	m := snap.Msgs[1]
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
		hdr, _, kept, _, err := f.ReadHeaderKept(m.Base, fields)
		if err != nil || len(kept.Envelope) != 0 || !bytes.Contains(hdr, []byte("Subject: other")) {
			t.Fatalf("a replaced message: %q %q %v", hdr, kept.Envelope, err)
		}
	})
}

// TestHeaderCacheOldVersion: a file of the format before envelopes were
// kept ("mailsrv-headers 1") is not read, and is rebuilt at the next
// write.
func TestHeaderCacheOldVersion(t *testing.T) {
	s, snap := hcStore(t)
	m := snap.Msgs[0]
	head := "mailsrv-headers 1\n"
	line := fmt.Sprintf("%s 1 2 3 0 0 0 0 0 0\n", m.Base) // version 1: no envelope length
	payload := line + "Subject: from version 1\r\n\r\n"
	rec := fmt.Sprintf("%08x %d\n%s", crc32c([]byte(payload)), len(payload), payload)
	path := filepath.Join(s.Root, HeaderCacheName)
	if err := os.WriteFile(path, []byte(head+rec), 0600); err != nil {
		t.Fatal(err)
	}
	checkHeaders(t, s, snap)
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte(hcMagic)) || bytes.Contains(data, []byte("version 1")) {
		t.Fatalf("not rebuilt: %q, %v", data, err)
	}
	if n := cacheFileOK(t, s); n != len(snap.Msgs)-1 {
		t.Fatalf("rebuilt with %d entries for %d messages", n, len(snap.Msgs))
	}
}

// TestRecordRoundTrip: a record holds the header, structure and envelope
// apart, whatever their lengths; lengths that do not add up are refused.
func TestRecordRoundTrip(t *testing.T) {
	for _, c := range []struct{ hdr, st, env string }{
		{"Subject: a\r\n\r\n", "", ""}, {"Subject: a\r\n\r\n", "(st)", ""}, {"Subject: a\r\n\r\n", "", "(env)"},
		{"Subject: a\r\n\r\n", "(st)", "(env)"}, {"", "", "(env)"}, {"x", "\n", "\n"},
	} {
		e := hcEntry{ino: 7, size: 8, mtime: 9, structure: []byte(c.st), envelope: []byte(c.env)}
		rec := appendRecord(nil, "base", e, []byte(c.hdr))
		got, hdr, err := decodeRecord(rec, "base")
		if err != nil || string(hdr) != c.hdr || string(got.structure) != c.st || string(got.envelope) != c.env || got.ino != 7 {
			t.Fatalf("%q: %+v %q %v", c, got, hdr, err)
		}
		if _, n, err := scanRecord(rec); err != nil || n != len(rec) {
			t.Fatalf("scan %q: %d %v", c, n, err)
		}
	}
	// structure and envelope lengths past the payload
	line := "base 7 8 9 0 0 0 0 0 3 4\n"
	payload := line + "abc"
	rec := fmt.Sprintf("%08x %d\n%s", crc32c([]byte(payload)), len(payload), payload)
	if _, _, err := decodeRecord([]byte(rec), "base"); err == nil {
		t.Fatal("lengths beyond the record were accepted")
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// TestKeptLimits: a structure or an envelope past its limit is not kept
// (the other is); a record with the largest header, structure and
// envelope kept is read back.
func TestKeptLimits(t *testing.T) {
	s, snap := hcStore(t)
	m := snap.Msgs[0]
	big := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
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
	for _, c := range []struct{ st, env, wantSt, wantEnv int }{
		{hcMaxStructure + 1, 10, 0, 10},
		{10, hcMaxEnvelope + 1, 10, 10}, // the envelope kept before stays
		{hcMaxStructure, hcMaxEnvelope, hcMaxStructure, hcMaxEnvelope},
	} {
		session(func(f *Folder) {
			_, _, keep, err := f.ReadWhole(m.Base)
			if err != nil {
				t.Fatal(err)
			}
			keep.Keep(Kept{Structure: big(c.st), Envelope: big(c.env)})
		})
		session(func(f *Folder) {
			_, _, kept, _, err := f.ReadHeaderKept(m.Base, []string{"Subject"})
			if err != nil || len(kept.Structure) != c.wantSt || len(kept.Envelope) != c.wantEnv {
				t.Fatalf("kept %d and %d bytes of %d and %d: %d and %d, %v", c.st, c.env, c.wantSt, c.wantEnv,
					len(kept.Structure), len(kept.Envelope), err)
			}
		})
	}
	e := hcEntry{structure: big(hcMaxStructure), envelope: big(hcMaxEnvelope)}
	rec := appendRecord(nil, strings.Repeat("b", 200), e, big(hcMaxEntry))
	if _, n, err := scanRecord(rec); err != nil || n != len(rec) {
		t.Fatalf("the largest record: %d of %d bytes, %v", n, len(rec), err)
	}
}
