package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Python's imaplib with IMAP4rev2 and UTF8=ACCEPT enabled (a raw ENABLE
// and IMAP4.enable), and as a plain rev1 client of the same folders.
func TestIMAPDImaplibRev2(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	_, addr := r.startIMAPD()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("python3", filepath.Join(imapTestdata, "imaplib_rev2.py"),
		host, port, "demo@example.test", DemoPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

// mbsync 1.4 (a rev1 client, which keeps modified UTF-7 names as they
// are) copies every folder, one made by a UTF-8 (IMAP4rev2) client and
// one made with CREATE (USE), while imapd advertises IMAP4rev2.
func TestIMAPDMbsyncUTF8Folders(t *testing.T) {
	r := newRoot(t)
	scramUser(t, r)
	mbox := r.mailbox("demo")
	imapd := bin(t, "imapd")
	session := "a ENABLE IMAP4rev2\r\n" +
		"b CREATE \"Réunions/été\"\r\n" +
		"c CREATE \"Sent Items\" (USE (\\Sent))\r\n" +
		"d APPEND \"Réunions/été\" {24+}\r\nSubject: réunion\r\n\r\nx\r\n\r\n" +
		"e LOGOUT\r\n"
	cmd := exec.Command(imapd, "--root", r.Dir)
	cmd.Env = append(os.Environ(), "TCPREMOTEIP=127.0.0.1")
	cmd.Stdin = strings.NewReader("L LOGIN demo@example.test \"" + DemoPassword + "\"\r\n" + session)
	res, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "d OK [APPENDUID") || !strings.Contains(string(res), "c OK") {
		t.Fatalf("imapd: %v\n%s", err, res)
	}
	if _, err := os.Stat(filepath.Join(mbox, ".R&AOk-unions.&AOk-t&AOk-", "cur")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := `IMAPAccount test
Tunnel "` + imapd + ` --root ` + r.Dir + `"
User demo@example.test
Pass "` + DemoPassword + `"
AuthMechs SCRAM-SHA-256
SSLType None

IMAPStore remote
Account test

MaildirStore local
Path ` + dir + `/
Inbox ` + dir + `/INBOX
SubFolders Verbatim

Channel c
Far :remote:
Near :local:
Patterns *
Create Near
SyncState *
`
	if err := os.WriteFile(filepath.Join(dir, "mbsyncrc"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "", "mbsync", "-c", filepath.Join(dir, "mbsyncrc"), "c")
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	got := messages(t, filepath.Join(dir, "R&AOk-unions", "&AOk-t&AOk-"))
	if len(got) != 1 || !strings.Contains(readFile(t, got[0]), "Subject: réunion") {
		ls, _ := exec.Command("find", dir).CombinedOutput()
		t.Log(string(ls))
		t.Fatalf("mbsync copied %q\n%s", got, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "Sent Items", "cur")); err != nil {
		t.Fatalf("Sent Items not synced: %v\n%s", err, out)
	}
}
