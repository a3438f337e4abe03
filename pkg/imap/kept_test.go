package imap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
)

// keptMessages are messages whose ENVELOPE and BODYSTRUCTURE take every
// path of writeEnvelope and of the header cache: encoded words, groups,
// missing and empty fields, Sender and Reply-To, 8-bit UTF-8 and 8-bit
// that is not UTF-8 (different text for a UTF8=ACCEPT session), quotes,
// a long folded Subject (a literal), address lists that do not parse,
// repeated fields, a large header (kept as fields), one that is not
// cached (a line that is no field), a header alone, a message/rfc822
// part with an 8-bit Subject (in the BODYSTRUCTURE).
func keptMessages() []string {
	received := strings.Repeat("Received: from relay.example.net (relay.example.net [192.0.2.7])\n\tby mx.example.test with ESMTPS id 4F2A; Tue, 3 Feb 2026 10:00:00 +0000\n", 20)
	return []string{
		"From: Plain Person <plain@example.test>\nTo: a@example.test, b@example.test\nCc: c@example.test\nSubject: plain one\n" +
			"Date: Tue, 3 Feb 2026 10:00:00 +0000\nMessage-ID: <1@example.test>\nIn-Reply-To: <0@example.test>\n\nbody\n",
		"From: =?UTF-8?B?U8O4cmVu?= <s@example.test>\nSubject: =?ISO-8859-1?Q?Caf=E9?= =?UTF-8?Q?na=C3=AFve?=\n" +
			"To: \"=?utf-8?q?J=C3=B6rg?=\" <j@example.test>, =?bogus?Q?x?= <x@example.test>\n\nbody\n",
		"From: g@example.test\nTo: undisclosed-recipients:;\nCc: Team: a@example.test, \"B, b\" <b@example.test>;, solo@example.test\n" +
			"Bcc: Empty Group:;\nSubject: groups\n\nbody\n",
		"X-Only: nothing else\n\nbody\n",
		"From: f@example.test\nSender: s@example.test\nReply-To:\nSubject:\nDate:\n\nbody\n",
		"From: Jörg Müller <joerg@example.test>\nTo: jörg@bücher.example\nSubject: Grüße aus Köln\nDate: Tue, 3 Feb 2026 10:00:00 +0000\n\nbody\n",
		"From: x@example.test\nSubject: caf\xe9 cr\xe8me\nMessage-ID: <\xe9@example.test>\n\nbody\n",
		"From: \"Q \\\"uote\\\" Name\" <q@example.test>\nSubject: a \"quoted\" \\ back " + strings.Repeat("x", 1100) +
			"\n\tfolded tail\x01\n\nbody\n",
		"From: not an address at all\nTo: <broken@\nCc: a@example.test,,\nSubject: bad addresses\n\nbody\n",
		"From: first@example.test\nFrom: second@example.test\nTo: a@example.test (Comment here)\nSubject: one\nSubject: two\n\nbody\n",
		received + "From: Large <large@example.test>\nSubject: large header\nTo: t@example.test\nX-Other: not kept\n\nbody\n",
		received + "From: b@example.test\nthis line is no field\nSubject: not cached\n\nbody\n",
		"Subject: a header alone\nFrom: h@example.test\n",
		"\nbody only\n",
		"From: m@example.test\nSubject: forwarded\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n" +
			"--b1\nContent-Type: text/plain; charset=utf-8\n\nsee below\n--b1\nContent-Type: message/rfc822\n\n" +
			"From: Zoë <zoe@example.test>\nSubject: inner café\n\ninner body\n--b1--\n",
	}
}

// keptFolder makes a root with keptMessages in INBOX's cur/, settled (a
// batch trusts the listing), and returns it and the messages as stored.
func keptFolder(t *testing.T) (addr, mbox string, msgs [][]byte) {
	t.Helper()
	cfg, mbox := testRoot(t)
	if err := maildir.Create(mbox); err != nil {
		t.Fatal(err)
	}
	for i, m := range keptMessages() {
		name := fmt.Sprintf("%d.M%dP1Q%d.host,S=%d:2,S", 1600000000+300*i, i, i, len(m))
		if err := os.WriteFile(filepath.Join(mbox, "cur", name), []byte(m), 0600); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, mailstore.ToCRLF([]byte(m)))
	}
	addr = testServer(t, cfg, nil)
	cl := dial(t, addr)
	cl.login()
	cl.send("S SELECT INBOX\r\n") // numbers them
	if r := cl.until("S"); !strings.Contains(r, "S OK") {
		t.Fatalf("select: %s", r)
	}
	time.Sleep(1100 * time.Millisecond)
	return addr, mbox, msgs
}

// freshFetch is what FETCH 1:* (items) answers from the messages
// themselves: ENVELOPE and BODYSTRUCTURE of the parsed message, in the
// session's mode.
func freshFetch(msgs [][]byte, items []string, utf8 bool) string {
	var b bytes.Buffer
	w := wire.NewWriter(&b)
	w.UTF8 = utf8
	for i, m := range msgs {
		root := parseMessage(m)
		w.Raw(fmt.Sprintf("* %d FETCH (", i+1))
		for k, it := range items {
			if k > 0 {
				w.SP()
			}
			w.Raw(it).SP()
			if it == "ENVELOPE" {
				writeEnvelope(w, root.header)
			} else {
				writeBodyStructure(w, root, true)
			}
		}
		w.Raw(")\r\n")
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return b.String()
}

// TestKeptEnvelopes: the ENVELOPE and BODYSTRUCTURE a session gets are
// the ones of the message itself, parsed, in both modes (IMAP4rev1 and
// UTF8=ACCEPT), whether they were rendered from the file (cold), kept in
// the header cache by a session of the same mode or of the other, or
// rendered from a header a SEARCH cached; and the cache keeps them.
func TestKeptEnvelopes(t *testing.T) {
	addr, mbox, msgs := keptFolder(t)
	session := func(utf8 bool, cmds ...string) []string {
		t.Helper()
		cl := dial(t, addr)
		cl.login()
		if utf8 {
			cl.send("E ENABLE UTF8=ACCEPT\r\n")
			if r := cl.until("E"); !strings.Contains(r, "E OK") {
				t.Fatalf("enable: %s", r)
			}
		}
		cl.send("S SELECT INBOX\r\n")
		if r := cl.until("S"); !strings.Contains(r, "S OK") {
			t.Fatalf("select: %s", r)
		}
		var out []string
		for _, c := range cmds {
			cl.send("F " + c + "\r\n")
			r := cl.until("F")
			if !strings.Contains(r, "F OK") {
				t.Fatalf("%s: %s", c, r)
			}
			out = append(out, r[:strings.LastIndex(r, "F OK")])
		}
		cl.send("Z LOGOUT\r\n")
		cl.until("Z")
		return out
	}
	check := func(what string, got string, items []string, utf8 bool) {
		t.Helper()
		if want := freshFetch(msgs, items, utf8); got != want {
			gl, wl := strings.Split(got, "\r\n"), strings.Split(want, "\r\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("%s (utf8 %v): line %d\n got %q\nwant %q", what, utf8, i, gl[i], wl[i])
				}
			}
			t.Fatalf("%s (utf8 %v):\n%s\nwant:\n%s", what, utf8, got, want)
		}
	}
	env := []string{"ENVELOPE"}
	both := []string{"ENVELOPE", "BODYSTRUCTURE"}
	cache := filepath.Join(mbox, mailstore.HeaderCacheName)
	for round, first := range []bool{false, true} {
		if err := os.Remove(cache); err != nil && round > 0 {
			t.Fatal(err)
		}
		// cold in one mode, then warm in both
		r := session(first, "FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)")
		check("cold", r[0], env, first)
		check("warm", r[1], env, first)
		check("warm, other mode", session(!first, "FETCH 1:* (ENVELOPE)")[0], env, !first)
		// a structure read from the files, then kept with the envelope
		r = session(first, "FETCH 1:* (ENVELOPE BODYSTRUCTURE)", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)", "FETCH 1:* (ENVELOPE)")
		check("cold structure", r[0], both, first)
		check("warm structure", r[1], both, first)
		check("warm after structure", r[2], env, first)
		check("warm structure, other mode", session(!first, "FETCH 1:* (ENVELOPE BODYSTRUCTURE)")[0], both, !first)
	}
	// Entries made by a search (the header's fields only, no envelope):
	// the envelope is rendered from them, then kept.
	if err := os.Remove(cache); err != nil {
		t.Fatal(err)
	}
	session(false, "SEARCH HEADER SUBJECT zzz")
	r := session(true, "FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)")
	check("from search entries", r[0], env, true)
	check("from search entries, warm", r[1], env, true)
	check("from search entries, other mode", session(false, "FETCH 1:* (ENVELOPE)")[0], env, false)

	// The cache keeps every envelope (but the uncached header's, whose
	// text, all NIL, another one has), in the form of its text.
	data, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		var b bytes.Buffer
		w := wire.NewWriter(&b)
		writeEnvelope(w, parseMessage(m).header)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if i != 11 && !bytes.Contains(data, b.Bytes()) {
			t.Fatalf("message %d: envelope %q not kept", i+1, b.Bytes())
		}
	}
}

// FuzzKeptItem: the kept form of an ENVELOPE and of a BODYSTRUCTURE
// gives each mode the text written for it from the message; pickKept
// takes any bytes without a panic, and gives nothing it was not given.
func FuzzKeptItem(f *testing.F) {
	for _, m := range keptMessages() {
		f.Add([]byte(m), []byte("=x"))
	}
	f.Add([]byte("Subject: \xff\xfe\n\n"), []byte("25 abcdefg"))
	f.Add([]byte("From: \"\xc3\" <a@b>\n\n"), []byte("2999999999999999999999 x"))
	f.Fuzz(func(t *testing.T, msg, kept []byte) {
		msg = mailstore.ToCRLF(msg)
		r := newRenderer()
		for _, whole := range []bool{false, true} {
			root := headerPart(msg, nil)
			write := func(w *wire.Writer) { writeEnvelope(w, root.header) }
			if whole {
				root = parseMessage(msg)
				write = func(w *wire.Writer) { writeBodyStructure(w, root, true) }
			}
			k := r.kept(write)
			for _, utf8 := range []bool{false, true} {
				var b bytes.Buffer
				w := wire.NewWriter(&b)
				w.UTF8 = utf8
				write(w)
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				got, ok := pickKept(k, utf8)
				if !ok || !bytes.Equal(got, b.Bytes()) {
					t.Fatalf("utf8 %v, kept %q: %q, written %q", utf8, k, got, b.Bytes())
				}
			}
		}
		for _, utf8 := range []bool{false, true} {
			if got, ok := pickKept(kept, utf8); ok && !bytes.Contains(kept, got) {
				t.Fatalf("%q gave %q", kept, got)
			}
		}
	})
}

// TestSpansResolve: spans names the messages resolve names, in order,
// for sequence sets of numbers and UIDs, "*", reversed and overlapping
// ranges, numbers past the end, and "$".
func TestSpansResolve(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		sel := &selected{saved: map[uint32]bool{}}
		uid := uint32(0)
		for range rng.IntN(40) {
			uid += 1 + uint32(rng.IntN(3))
			sel.msgs = append(sel.msgs, mailstore.Message{UID: uid})
			if rng.IntN(3) == 0 {
				sel.saved[uid] = true
			}
		}
		var set wire.SeqSet
		set.Saved = round%10 == 0
		for range 1 + rng.IntN(4) {
			num := func() uint32 {
				if rng.IntN(6) == 0 {
					return wire.Star
				}
				return uint32(rng.IntN(int(uid) + 5))
			}
			set.Ranges = append(set.Ranges, wire.SeqRange{Lo: num(), Hi: num()})
		}
		for _, byUID := range []bool{false, true} {
			want := sel.resolve(set, byUID)
			var got []int
			for _, sp := range sel.spans(set, byUID) {
				for i := sp.lo; i < sp.hi; i++ {
					got = append(got, i)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%d messages, set %+v, uid %v: spans %v, resolve %v", len(sel.msgs), set, byUID, got, want)
			}
		}
	}
}

// TestFlagsOf: the FLAGS a FETCH writes from its per-command table are
// flagList's, for system flags, keywords, letters out of order, and
// \Recent.
func TestFlagsOf(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(dir); err != nil {
		t.Fatal(err)
	}
	f := &mailstore.Folder{Name: "INBOX", Dir: dir}
	kw, err := f.Letters([]string{"$Forwarded", "Work", `\Seen`}, true)
	if err != nil {
		t.Fatal(err)
	}
	kws := strings.Trim(string(kw), `ABCDEFGHIJKLMNOPQRSTUVWXYZ`) // the keywords' letters
	if len(kws) != 2 {
		t.Fatalf("letters %q", kw)
	}
	sel := &selected{folder: f, recent: map[uint32]bool{7: true}}
	run := newFetchRun(nil)
	for i, fl := range []string{"", "S", "RS", "FRS", "SR", "S" + kws, kws + "S", "S" + kws[1:], "S" + kws[1:] + kws[:1], "DFPRST", "S", "RS", "S", "x", "Sx", "S"} {
		m := mailstore.Message{UID: uint32(i + 1), Flags: mailstore.Flags(fl)}
		if got, want := string(run.flagsOf(sel, m)), "FLAGS "+sel.flagList(m); got != want {
			t.Fatalf("flags %q (UID %d): %q, flagList %q", fl, m.UID, got, want)
		}
	}
	// more sets of flags than the table holds
	for i := range 200 {
		var fl []byte
		for bit, l := range []byte("DFPRST" + kws) {
			if i>>bit&1 == 1 {
				fl = append(fl, l)
			}
		}
		slices.Sort(fl)
		m := mailstore.Message{UID: 100, Flags: mailstore.Flags(fl)}
		if got, want := string(run.flagsOf(sel, m)), "FLAGS "+sel.flagList(m); got != want {
			t.Fatalf("flags %q: %q, flagList %q", fl, got, want)
		}
	}
	if len(run.flags) > 64 {
		t.Fatalf("%d sets of flags in the table", len(run.flags))
	}
}

// FuzzEnvelopeCache: through a real header cache, the ENVELOPE kept by
// one session and given to the next, and the one rendered from the
// header the cache gives (what a SEARCH's entry holds), are in each mode
// the ENVELOPE of the message parsed whole.
func FuzzEnvelopeCache(f *testing.F) {
	for _, m := range keptMessages() {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 64<<10 {
			return
		}
		dir := filepath.Join(t.TempDir(), "Maildir")
		if err := maildir.Create(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cur", "1600000000.M1P1Q1.host:2,S"), msg, 0600); err != nil {
			t.Fatal(err)
		}
		want := map[bool][]byte{}
		root := parseMessage(mailstore.ToCRLF(msg))
		r := newRenderer()
		for _, utf8 := range []bool{false, true} {
			want[utf8] = bytes.Clone(r.render(utf8, func(w *wire.Writer) { writeEnvelope(w, root.header) }))
		}
		cached := false
		for session := range 2 {
			fo := &mailstore.Folder{Name: "INBOX", Dir: dir}
			snap, _, err := fo.Sync(true)
			if err != nil || len(snap.Msgs) != 1 {
				t.Fatalf("sync: %v, %d messages", err, len(snap.Msgs))
			}
			end := fo.HeaderBatch()
			hdr, _, kept, keep, err := fo.ReadHeaderKept(snap.Msgs[0].Base, envelopeFields)
			if err != nil {
				t.Fatal(err)
			}
			h := headerPart(hdr, nil).header
			k := r.kept(func(w *wire.Writer) { writeEnvelope(w, h) })
			for _, utf8 := range []bool{false, true} {
				if got, _ := pickKept(k, utf8); !bytes.Equal(got, want[utf8]) {
					t.Fatalf("session %d, utf8 %v, from the header given:\n%q\nwant %q", session, utf8, got, want[utf8])
				}
				if got, ok := pickKept(kept.Envelope, utf8); session > 0 && (ok || cached) && !bytes.Equal(got, want[utf8]) {
					t.Fatalf("utf8 %v, kept (a record %v):\n%q\nwant %q", utf8, cached, got, want[utf8])
				}
			}
			keep.Keep(mailstore.Kept{Envelope: k})
			if err := end(); err != nil {
				t.Fatal(err)
			}
			// a record was written: the next session must get the envelope
			fi, err := os.Stat(filepath.Join(dir, mailstore.HeaderCacheName))
			cached = err == nil && fi.Size() > int64(len("mailsrv-headers 2\n"))
		}
	})
}
