package deliver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
)

func TestCheckLoop(t *testing.T) {
	for _, c := range []struct {
		name, msg, rcpt string
		loop            bool
	}{
		{"clean", "Subject: x\n\nDelivered-To: a@b.test\n", "a@b.test", false},
		{"delivered before", "Delivered-To: A@B.test\nSubject: x\n\n", "a@b.test", true},
		{"other address", "Delivered-To: c@b.test\n\n", "a@b.test", false},
		{"folded line", "X-Note: hi\n Delivered-To: a@b.test\n\n", "a@b.test", false},
		{"too many hops", strings.Repeat("Received: from x\n", MaxHops+1) + "\n", "a@b.test", true},
		{"at the hop limit", strings.Repeat("Received: from x\n", MaxHops) + "\n", "a@b.test", false},
	} {
		err := checkLoop([]byte(c.msg), c.rcpt)
		var de *Error
		if got := errors.As(err, &de) && de.Status == "5.4.6" && de.Exit == ExitDataErr; got != c.loop {
			t.Errorf("%s: loop=%v (%v), want %v", c.name, got, err, c.loop)
		}
	}
}

func TestToUser(t *testing.T) {
	root := t.TempDir()
	if err := config.Init(root, "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	write := func(rel, s string) {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(s), 0644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/domains", "example.test\n")
	write("etc/users", "demo@example.test:$argon2id$x\n")
	d := &Deliverer{Cfg: config.Open(root)}
	a, _ := address.Parse("Demo+tag@example.test")
	path, err := d.ToUser(a, "s@x.test", []byte("Subject: hi\n\nyo\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, filepath.Join(root, "mail/example.test/demo/new")+"/") {
		t.Errorf("delivered to %s", path)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "Return-Path: <s@x.test>\nDelivered-To: Demo+tag@example.test\nSubject: hi\n\nyo\n" {
		t.Errorf("content %q", b)
	}
	nobody, _ := address.Parse("nobody@example.test")
	if _, err := d.ToUser(nobody, "", nil); ErrorOf(err).Exit != ExitNoUser || ErrorOf(err).Code != 550 {
		t.Errorf("unknown user: %v", err)
	}
	// A mailbox that cannot be made is a temporary failure.
	write("etc/users", "demo@example.test:$argon2id$x\nbad@example.test:$argon2id$x\n")
	write("mail/example.test/bad", "a file in the way")
	bad, _ := address.Parse("bad@example.test")
	if _, err := d.ToUser(bad, "", []byte("x\n")); !ErrorOf(err).Temporary || ErrorOf(err).Exit != ExitTempFail {
		t.Errorf("unwritable mailbox: %+v", ErrorOf(err))
	}
}

func TestReadMessage(t *testing.T) {
	got, err := ReadMessage(strings.NewReader("a\r\nb\n"), 0)
	if err != nil || string(got) != "a\nb\n" {
		t.Errorf("got %q %v", got, err)
	}
	if _, err := ReadMessage(strings.NewReader("123456"), 5); ErrorOf(err).Code != 552 {
		t.Errorf("over the limit: %v", err)
	}
}
