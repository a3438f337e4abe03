package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
	"mailsrv/pkg/mailstore"
)

// imaplibLazy: sessions A and B make the folder's index current; C
// selects from it and waits for a line on stdin; D, another process,
// expunges message 1 and appends one; C's FETCH 2 must still be UID 2 (the
// view it was told of), and the changes come at its NOOP.
const imaplibLazy = `
import imaplib, sys, time
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def session():
    M = imaplib.IMAP4(host, port)
    M.login(user, pw)
    return M
for _ in range(2):
    M = session(); M.select('INBOX'); M.logout()
    time.sleep(1.1)
C = session()
typ, data = C.select('INBOX')
print('select', typ, data, C.untagged_responses.get('UNSEEN'), flush=True)
sys.stdin.readline()
D = session()
D.select('INBOX')
D.store('1', '+FLAGS', '\\Deleted')
D.expunge()
D.append('INBOX', None, None, b'Subject: late\r\n\r\nx\r\n')
D.logout()
typ, data = C.fetch('2', '(UID)')
print('fetch', typ, data, flush=True)
typ, data = C.noop()
print('noop', typ, C.untagged_responses.get('EXPUNGE'), C.untagged_responses.get('EXISTS'), flush=True)
typ, data = C.uid('SEARCH', 'ALL')
print('search', typ, data, flush=True)
C.logout()
`

// TestIMAPDLazySelectImaplib: Python's imaplib selects a folder whose
// index is current; imapd (a process per session) answers from the
// index's summary and holds the file until a command needs the messages,
// which are then those the client was told of.
func TestIMAPDLazySelectImaplib(t *testing.T) {
	r := newRoot(t)
	box := r.mailbox("demo")
	if err := maildir.Create(box); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := maildir.Deliver(box, []byte("Subject: x\n\n"), strings.NewReader("x\n")); err != nil {
			t.Fatal(err)
		}
	}
	addr := imapTcpserver(t, r, nil)
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", imaplibLazy, host, port, "demo@example.test", DemoPassword)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewScanner(stdout)
	var got []string
	if out.Scan() {
		got = append(got, out.Text())
	}
	if len(got) == 0 || got[0] != "select OK [b'4'] [b'1']" {
		t.Fatalf("imaplib SELECT: %q", got)
	}
	held := indexHolders(t, filepath.Join(box, mailstore.IndexName))
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	for out.Scan() {
		got = append(got, out.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("imaplib: %v\n%s", err, strings.Join(got, "\n"))
	}
	if held != 1 {
		t.Errorf("%d processes held the folder index after SELECT, want the session's imapd", held)
	}
	want := []string{
		"fetch OK [b'2 (UID 2)']",
		"noop OK [b'1'] [b'4', b'5']", // EXISTS 4 at SELECT, 5 after the FETCH
		"search OK [b'2 3 4 5']",
	}
	if strings.Join(got[1:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("imaplib saw:\n%s\nwant:\n%s", strings.Join(got[1:], "\n"), strings.Join(want, "\n"))
	}
}

// indexHolders counts the processes with path open.
func indexHolders(t *testing.T, path string) int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && l == path {
			n++
		}
	}
	return n
}
