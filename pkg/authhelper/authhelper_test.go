package authhelper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
)

const password = "correct horse battery staple"

// helper serves a root with bob@example.org (hash and SCRAM keys) over
// pipes and returns the client.
func helper(t *testing.T) (*Client, *config.Config) {
	t.Helper()
	cfg := testRoot(t)
	reqR, reqW := io.Pipe()
	ansR, ansW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Serve(reqR, ansW, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		_ = ansW.CloseWithError(err)
		done <- err
	}()
	c := NewClient(ansR, reqW)
	t.Cleanup(func() {
		_ = c.Close()
		if err := <-done; err != nil && !strings.Contains(t.Name(), "Bad") {
			t.Errorf("Serve: %v", err)
		}
	})
	return c, cfg
}

// testRoot is a root with bob@example.org (hash and SCRAM keys).
func testRoot(t testing.TB) *config.Config {
	t.Helper()
	root := t.TempDir()
	if err := config.Init(root, "mx.example.org"); err != nil {
		t.Fatal(err)
	}
	hash, attrs, err := auth.SetPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	attrs["send-as"] = "boss@example.org"
	u := config.User{Hash: hash, Attrs: attrs}
	u.Addr.Local, u.Addr.Domain = "bob", "example.org"
	write(t, root, "etc/domains", "example.org\n")
	write(t, root, "etc/users", u.Line()+"\n")
	return config.Open(root)
}

func write(t testing.TB, root, rel, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	c, _ := helper(t)
	u, err := c.Check(context.Background(), "bob@example.org", password)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if u.Addr.String() != "bob@example.org" || u.Hash != "" || u.Attrs["send-as"] != "boss@example.org" {
		t.Fatalf("user %+v", u)
	}
	if _, ok := u.Attrs[auth.AttrScramSHA256]; ok {
		t.Fatal("SCRAM keys left the helper")
	}
	for _, tc := range []struct{ user, pass string }{
		{"bob@example.org", "wrong"},
		{"nobody@example.org", password},
		{"bob@example.org", "a\nb\"c\x00"},
		{"not an address", password},
	} {
		if _, err := c.Check(context.Background(), tc.user, tc.pass); !errors.Is(err, auth.ErrMismatch) {
			t.Errorf("%q/%q: %v, want ErrMismatch", tc.user, tc.pass, err)
		}
	}
}

// Lookup through the helper serves Resolve as etc/users would, without
// the hash.
func TestLookupThroughConfig(t *testing.T) {
	c, cfg := helper(t)
	smtpdCfg := config.Open(cfg.Root)
	smtpdCfg.Lookup = c.Lookup
	for addr, want := range map[string]bool{"bob@example.org": true, "Bob+tag@example.org": true, "alice@example.org": false} {
		a, err := parseAddr(addr)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := smtpdCfg.Exists(a)
		if err != nil || ok != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", addr, ok, err, want)
		}
	}
	u, ok, err := c.Lookup("bob@example.org")
	if err != nil || !ok || u.Hash != "" {
		t.Fatalf("Lookup: %+v %v %v", u, ok, err)
	}
}

// A broken request gets an error answer and the helper goes on; an
// oversized one ends it.
func TestBadRequests(t *testing.T) {
	c, _ := helper(t)
	if _, err := c.ask(request{Op: "steal"}); err == nil || !strings.Contains(err.Error(), "unknown op") {
		t.Fatalf("unknown op: %v", err)
	}
	if _, err := c.w.Write([]byte("{not json\n")); err != nil {
		t.Fatal(err)
	}
	line, err := readLine(c.r)
	if err != nil || !strings.Contains(string(line), "bad request") {
		t.Fatalf("bad JSON: %q %v", line, err)
	}
	if _, err := c.Check(context.Background(), "bob@example.org", password); err != nil {
		t.Fatalf("after bad requests: %v", err)
	}
	if _, err := c.Check(context.Background(), "bob@example.org", strings.Repeat("x", MaxLine)); err == nil {
		t.Fatal("oversized request answered")
	}
}

func parseAddr(s string) (address.Address, error) { return address.Parse(s) }

// A helper that does not answer is killed after Timeout: the caller gets
// an error instead of hanging, and Done tells the daemon to stop.
func TestStuckHelperKilled(t *testing.T) {
	me, err := privsep.Lookup(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start([]string{"sleep", "60"}, me)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	old := Timeout
	Timeout = 200 * time.Millisecond
	defer func() { Timeout = old }()
	if _, err := c.Check(context.Background(), "bob@example.org", password); err == nil || errors.Is(err, auth.ErrMismatch) {
		t.Fatalf("stuck helper: %v, want a server error", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("stuck helper still running")
	}
}
