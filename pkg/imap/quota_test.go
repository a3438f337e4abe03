package imap

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestQuota(t *testing.T) {
	cfg, _ := testRoot(t)
	addr := testServer(t, cfg, nil)
	cl := dial(t, addr)
	cl.login()
	cl.send("1 GETQUOTAROOT INBOX\r\n")
	if r := cl.until("1"); r != "* QUOTAROOT INBOX\r\n1 OK GETQUOTAROOT completed\r\n" {
		t.Fatalf("no quota: %q", r)
	}
	users := filepath.Join(cfg.Root, "etc/users")
	data, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	// Control files are re-read when they change; a new session sees it.
	// The login above added the SCRAM keys (auth.Upgrade), so the line
	// may already have attributes: quota= joins them.
	line := strings.TrimSpace(string(data))
	if strings.Count(line, ":") >= 2 {
		line += " quota=2K"
	} else {
		line += ":quota=2K"
	}
	if err := os.WriteFile(users, []byte(line+"\n"), 0640); err != nil {
		t.Fatal(err)
	}
	cl = dial(t, addr)
	cl.login()
	msg := "Subject: q\r\n\r\n" + strings.Repeat("x", 1500) + "\r\n"
	cl.send("2 APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if r := cl.until("2"); !strings.HasPrefix(r, "2 OK [APPENDUID") {
		t.Fatalf("append under quota: %q", r)
	}
	cl.send("3 APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if r := cl.until("3"); r != "3 NO [OVERQUOTA] mailbox is over its quota\r\n" {
		t.Fatalf("append over quota: %q", r)
	}
	cl.send("4 GETQUOTAROOT INBOX\r\n")
	if r := cl.until("4"); r != "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 2 2)\r\n4 OK GETQUOTAROOT completed\r\n" {
		t.Fatalf("getquotaroot: %q", r)
	}
	cl.send("5 SELECT INBOX\r\n6 COPY 1 Trash\r\n")
	cl.until("5")
	if r := cl.until("6"); r != "6 NO [OVERQUOTA] mailbox is over its quota\r\n" {
		t.Fatalf("copy over quota: %q", r)
	}
	// EXPUNGE gives the room back (maildirsize, as every writer keeps it).
	cl.send("s1 STORE 1 +FLAGS (\\Deleted)\r\ns2 EXPUNGE\r\ns3 GETQUOTA \"\"\r\n")
	cl.until("s2")
	if r := cl.until("s3"); r != "* QUOTA \"\" (STORAGE 0 2)\r\ns3 OK GETQUOTA completed\r\n" {
		t.Fatalf("after EXPUNGE: %q", r)
	}
	cl.send("s4 APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	if r := cl.until("s4"); !strings.Contains(r, "s4 OK [APPENDUID") {
		t.Fatalf("append after EXPUNGE: %q", r)
	}
	cl.send("7 SETQUOTA \"\" (STORAGE 10)\r\n8 GETQUOTA nothing\r\n")
	if r := cl.until("7"); !strings.HasPrefix(r, "7 NO [NOPERM]") {
		t.Fatalf("setquota: %q", r)
	}
	if r := cl.until("8"); !strings.HasPrefix(r, "8 NO [NONEXISTENT]") {
		t.Fatalf("getquota: %q", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
