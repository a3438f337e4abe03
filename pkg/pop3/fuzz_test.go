package pop3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailsrv/pkg/maildir"
)

// FuzzParseCommand feeds arbitrary bytes to the line reader and the
// command parser, as a client would send them: they must not panic, must
// keep every line within the limit, and must give a keyword of 3 or 4
// upper-case letters for whatever they accept.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"USER alice@example.org\r\n", "PASS a b c\r\n", "RETR 1\r\n", "TOP 1 10\r\n",
		"list\n", "AUTH PLAIN AGFsaWNlAHB3\r\n", "\r\n", "NOOP\x00\r\n", strings.Repeat("A", 300) + "\r\n",
		"STAT\r\nQUIT\r\n", "UIDL 99999999999\r\n", "CAPA",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		for range 1000 {
			line, err := ReadLine(r, MaxCommandLine)
			if errors.Is(err, ErrLineTooLong) {
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadLine: %v", err)
				}
				return
			}
			if len(line) > MaxCommandLine || strings.ContainsAny(line, "\n") {
				t.Fatalf("bad line %q", line)
			}
			cmd, err := ParseCommand(line)
			if err != nil {
				continue
			}
			if len(cmd.Name) < 3 || len(cmd.Name) > 4 || strings.ToUpper(cmd.Name) != cmd.Name {
				t.Fatalf("keyword %q from %q", cmd.Name, line)
			}
			for _, a := range cmd.Args {
				if a == "" || strings.ContainsAny(a, " \r\n\x00") {
					t.Fatalf("argument %q from %q", a, line)
				}
			}
			if n, ok := ParseMsgNum(cmd.Rest); ok && n <= 0 {
				t.Fatalf("message number %d from %q", n, cmd.Rest)
			}
		}
	})
}

// FuzzWriteMessage checks the byte-stuffing writer: its output is CRLF
// lines only, ends with ".\r\n" and nowhere else, and undoing the stuffing
// gives back the input with its line endings made CRLF.
func FuzzWriteMessage(f *testing.F) {
	for _, s := range []string{"A: b\n\nbody\n", ".\n..\r\n", "x\r", "\r\n\r\n", "no newline", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := WriteMessage(w, bytes.NewReader(data), -1); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		out := b.Bytes()
		if !bytes.HasSuffix(out, []byte(".\r\n")) {
			t.Fatalf("no terminator: %q", out)
		}
		lines := bytes.SplitAfter(out[:len(out)-3], []byte("\r\n"))
		var back bytes.Buffer
		for _, l := range lines {
			if len(l) == 0 {
				continue
			}
			if !bytes.HasSuffix(l, []byte("\r\n")) || bytes.IndexByte(l[:len(l)-1], '\n') >= 0 {
				t.Fatalf("line %q in %q", l, out)
			}
			if bytes.Equal(l, []byte(".\r\n")) {
				t.Fatalf("early terminator in %q", out)
			}
			if l[0] == '.' {
				l = l[1:]
			}
			back.Write(l)
		}
		want := normalizeCRLF(data)
		if !bytes.Equal(back.Bytes(), want) {
			t.Fatalf("round trip:\n got %q\nwant %q", back.Bytes(), want)
		}
	})
}

// normalizeCRLF is the slow, obvious version of what WriteMessage does to
// line endings.
func normalizeCRLF(in []byte) []byte {
	var out []byte
	for i, c := range in {
		if c == '\n' && (i == 0 || in[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\r', '\n')
	}
	return out
}

// FuzzSession runs whole sessions on arbitrary client input (the seeds log
// in, so the fuzzer reaches the TRANSACTION state; a mutated user name
// costs a full argon2id check, so this fuzzer is slow): the server must not
// panic or hang, reply lines must end in CRLF (a session closed for bad
// input may stop in the middle of a reply, so only bare LFs are checked),
// and the mailbox must
// never lose a message except through DELE and QUIT.
func FuzzSession(f *testing.F) {
	login := "USER " + testUser + "\r\nPASS " + testPass + "\r\n"
	for _, s := range []string{
		login + "STAT\r\nLIST\r\nRETR 1\r\nTOP 2 1\r\nUIDL\r\nDELE 1\r\nRSET\r\nQUIT\r\n",
		login + "DELE 1\r\nDELE 2\r\nQUIT\r\n",
		login + "LIST 2\r\nUIDL 1\r\nRETR 3\r\nNOOP\r\nCAPA\r\n",
		"AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+testUser+"\x00"+testPass)) + "\r\nRETR 2\r\n",
		"AUTH LOGIN\r\n" + base64.StdEncoding.EncodeToString([]byte(testUser)) + "\r\n*\r\n",
		"CAPA\r\nSTLS\r\nAUTH\r\nUSER\r\nPASS\r\n",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f)
	e.srv.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := e.mailbox()
	e.start()
	f.Fuzz(func(t *testing.T, data []byte) {
		for n := countMessages(t, dir); n < 2; n++ {
			if _, err := maildir.Deliver(dir, []byte("Subject: f\n\n.x\nbody\n"), strings.NewReader("")); err != nil {
				t.Fatal(err)
			}
		}
		before := countMessages(t, dir)
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		// Write while reading, or long replies would fill the socket
		// buffers both ways. At the end of input the server answers what
		// it got, sees EOF and ends the session, closing the connection.
		go func() {
			_, _ = c.Write(data)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		_ = c.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading replies: %v (input %q, got %q)", err, data, out)
		}
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF in replies at %d: %q", i, out[max(0, i-40):i+1])
			}
		}
		after := countMessages(t, dir)
		if after < before && !bytes.Contains(bytes.ToUpper(data), []byte("DELE")) {
			t.Fatalf("messages went from %d to %d without DELE", before, after)
		}
	})
}

func countMessages(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"cur", "new"} {
		names, err := readNames(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		n += len(names)
	}
	return n
}
