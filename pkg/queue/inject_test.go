package queue

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-smtp"
)

func TestCopyLF(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\nb", "a\nb"},
		{"a\rb\r", "a\rb\r"},
		{"\r\n\r\n", "\n\n"},
		{"x\r", "x\r"},
	} {
		// One byte at a time, to cross every chunk boundary.
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := copyLF(w, iotest.OneByteReader(strings.NewReader(c.in)), 0); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		if out.String() != c.want {
			t.Errorf("copyLF(%q) = %q, want %q", c.in, out.String(), c.want)
		}
	}
}

func TestInjectCommitsOneFile(t *testing.T) {
	dir := t.TempDir()
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	q, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: mustAddr(t, "a@b.test"), To: []Recipient{{Addr: mustAddr(t, "c@d.test")}}}
	id, err := q.Inject(context.Background(), env, strings.NewReader("Subject: s\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, DirIncoming, id))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), Magic+"\nfrom a@b.test\nto c@d.test\nreceived ") ||
		!strings.HasSuffix(string(data), "\n\nSubject: s\n\nhi\n") {
		t.Errorf("queue file:\n%s", data)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, DirTmp)); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
	if _, err := q.InjectLimit(env, strings.NewReader(strings.Repeat("x", 100)), 50); err != ErrTooBig {
		t.Errorf("over the limit: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, DirTmp)); len(ents) != 0 {
		t.Errorf("a refused message stayed in tmp/: %v", ents)
	}
	if _, err := q.Inject(context.Background(), &Envelope{}, strings.NewReader("x")); err == nil || IsTemporary(err) {
		t.Errorf("no recipients: %v", err)
	}
}

func TestInjectUnwritableQueueIsTemporary(t *testing.T) {
	q := &Queue{Dir: filepath.Join(t.TempDir(), "missing")}
	env := &Envelope{To: []Recipient{{Addr: mustAddr(t, "c@d.test")}}}
	_, err := q.Inject(context.Background(), env, strings.NewReader("x"))
	if !IsTemporary(err) {
		t.Errorf("missing queue: %v, want a temporary error", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	q := &Queue{Dir: dir}
	rs := []*RcptState{{Status: StatePending, Attempts: 2, Addr: "a@b.test", Orig: "x@b.test", LastErr: "451 4.3.0\tno\nway"},
		{Status: StateRemote, Addr: "r@far.test", Orig: "r@far.test"}}
	if err := q.writeState("1.2.3", rs); err != nil {
		t.Fatal(err)
	}
	got, err := q.readState("1.2.3")
	if err != nil || len(got) != 2 || got[0].Attempts != 2 || got[0].LastErr != "451 4.3.0 no?way" || got[1].Status != StateRemote {
		t.Fatalf("state: %v %+v", err, got)
	}
	if got, err := q.readState("4.5.6"); got != nil || err != nil {
		t.Errorf("missing state: %v %v", got, err)
	}
}

// Through the LMTP server: the reply carries the queue id, AUTH= reaches
// the envelope, and a recipient spelled in mixed case (which the address
// parser normalizes) still gets its reply.
func TestServeLMTPReplies(t *testing.T) {
	dir := t.TempDir()
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	q := &Queue{Dir: dir}
	cs, ss := net.Pipe()
	go func() { _ = q.ServeLMTP(ss, 0, "test") }()
	c := smtp.NewClientLMTP(cs)
	defer c.Close()
	auth := "ann@example.test"
	if err := c.Mail("ann@example.test", &smtp.MailOptions{Auth: &auth}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("Bob@EXAMPLE.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	replies, err := w.CloseWithLMTPResponse()
	if err != nil {
		t.Fatal(err)
	}
	_, id, ok := strings.Cut(replies["Bob@EXAMPLE.test"].StatusText, "queued as ")
	if !ok || !validID(id) {
		t.Fatalf("reply %+v has no queue id", replies)
	}
	env, err := q.ReadEnvelopeOf(DirIncoming, id)
	if err != nil || env.Auth != auth || env.To[0].Addr.String() != "Bob@example.test" {
		t.Errorf("envelope %+v, %v", env, err)
	}
}
