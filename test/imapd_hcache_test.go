package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
)

// hcacheMessages are headers of the shapes the header cache keeps
// differently: small (whole), large (fields only), folded and repeated
// fields, encoded words, a line that is no field, no blank line.
func hcacheMessages() []string {
	received := strings.Repeat("Received: from relay.example.net (relay.example.net [192.0.2.7])\n\tby mx.example.test with ESMTPS id 4F2A; Tue, 3 Feb 2026 10:00:00 +0000\n", 20)
	return []string{
		"From: a@example.test\nSubject: small one\nDate: Tue, 3 Feb 2026 10:00:00 +0000\n\nbody\n",
		received + "From: =?UTF-8?B?U8O4cmVu?= <s@example.test>\nTo: x@example.test,\n  y@example.test\nSubject: budget review\n  folded\nX-Other: not cached\nMessage-ID: <1@example.test>\nDate: Sat, 3 Jan 2026 10:00:00 +0100\nSubject: second subject\n\nbody\n",
		received + "From: b@example.test\nthis line is no field\nSubject: broken header\n\nbody\n",
		"Subject: no body and no blank line\nFrom: c@example.test\n",
		received + "Subject: budget review, large\nCc: \"Mei\" <mei@example.test>\nDKIM-Signature: v=1; a=rsa-sha256;\n\tb=" + strings.Repeat("A", 3000) + "\n\nbody\n",
		" continuation first\nSubject: odd\n\nbody\n",
		"From: d@example.test\nSubject: =?ISO-8859-1?Q?Caf=E9?= budget\nReply-To: r@example.test\n\nbody\n",
		"From: m@example.test\nSubject: multi\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n" +
			"--b1\nContent-Type: text/plain; charset=utf-8\n\nplain\n--b1\nContent-Type: text/html\n\n<p>html</p>\n--b1--\n",
	}
}

// hcacheDump runs the imaplib dump of every header answer.
func hcacheDump(t *testing.T, addr string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("timeout", "60", "python3", filepath.Join(imapTestdata, "hcache_client.py"),
		host, port, "demo@example.test", DemoPassword, "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	return string(out)
}

// Python's imaplib, through imapd processes under tcpserver (a process
// per session, so that the caches on disk are what sessions share), gets
// the same ENVELOPE, header fields and SEARCH answers from a cold folder
// (read from the files), a warm one (from mailsrv-index and
// mailsrv-headers), after another process changed, re-flagged and
// expunged messages, and with caches deleted or damaged.
func TestIMAPDHeaderCacheImaplib(t *testing.T) {
	r := newRoot(t)
	box := r.mailbox("demo")
	if err := maildir.Create(box); err != nil {
		t.Fatal(err)
	}
	for _, m := range hcacheMessages() {
		if _, err := maildir.Deliver(box, []byte(m), strings.NewReader("")); err != nil {
			t.Fatal(err)
		}
	}
	addr := imapTcpserver(t, r, nil)
	caches := []string{filepath.Join(box, mailstore.HeaderCacheName), filepath.Join(box, mailstore.IndexName)}
	cold := hcacheDump(t, addr) // claims new/: the listing is not settled yet
	time.Sleep(1100 * time.Millisecond)
	if again := hcacheDump(t, addr); again != cold {
		t.Fatalf("second session differs:\n%s\nfirst:\n%s", again, cold)
	}
	for _, p := range caches {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Fatalf("no cache file %s: %v", p, err)
		}
	}
	sizeOf := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := sizeOf(caches[0])
	if warm := hcacheDump(t, addr); warm != cold {
		t.Fatalf("warm session differs:\n%s\ncold:\n%s", warm, cold)
	}
	if after := sizeOf(caches[0]); after != before {
		t.Fatalf("the warm session added %d bytes to the header cache: it read files", after-before)
	}
	for _, want := range []string{"S=C3=B8ren", "BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\")", "budget review", "X-Other: not cached", "('HEADER', 'SUBJECT', '\"budget review\"') OK [b'2 5']"} {
		if !strings.Contains(cold, want) {
			t.Fatalf("the dump lacks %q:\n%s", want, cold)
		}
	}

	// Another process: message 1 replaced under its name (a foreign
	// tool), message 3 expunged, message 2 re-flagged.
	cur := filepath.Join(box, "cur")
	names, err := os.ReadDir(cur)
	if err != nil || len(names) != len(hcacheMessages()) {
		t.Fatalf("cur/: %d files, %v", len(names), err)
	}
	byUID := map[string]string{} // subject prefix → file
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(cur, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		byUID[strings.SplitN(string(data), "\n", 3)[1]] = n.Name()
	}
	small := byUID["Subject: small one"]
	tmp := filepath.Join(box, "tmp", "replacement")
	if err := os.WriteFile(tmp, []byte("From: a@example.test\nSubject: REPLACED budget review\nDate: Tue, 3 Feb 2026 10:00:00 +0000\n\nbody\n"), 0600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cur, small)); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("timeout", "60", "python3", filepath.Join(imapTestdata, "hcache_client.py"),
		host, port, "demo@example.test", DemoPassword, "stale", "3").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "NO") || strings.Contains(string(out), "ENVELOPE") {
		t.Fatalf("a session answered an expunged message: %v\n%s", err, out)
	}
	changed := hcacheDump(t, addr)
	if changed == cold || !strings.Contains(changed, "REPLACED") {
		t.Fatalf("the changes are not seen:\n%s", changed)
	}
	for _, p := range caches {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if truth := hcacheDump(t, addr); truth != changed {
		t.Fatalf("answers after the changes differ from the files':\n%s\nfiles:\n%s", changed, truth)
	}
	time.Sleep(1100 * time.Millisecond)
	hcacheDump(t, addr) // writes both caches again, settled
	for _, p := range caches {
		if err := os.WriteFile(p, []byte("garbage\n\x00\x01"+strings.Repeat("x 1\n", 100)), 0600); err != nil {
			t.Fatal(err)
		}
	}
	if got := hcacheDump(t, addr); got != changed {
		t.Fatalf("answers with damaged caches:\n%s\nwant:\n%s", got, changed)
	}
}
