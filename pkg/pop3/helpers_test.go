package pop3

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/maildir"
)

const (
	testUser = "alice@example.org"
	testPass = "correct horse battery"
)

// cheapHash is an argon2id PHC string with tiny parameters, which
// auth.Verify accepts: tests log in often and the real cost is 64 MiB.
func cheapHash(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	b := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", b.EncodeToString(salt), b.EncodeToString(key))
}

// testEnv is a root with the domain example.org and users alice and bob.
type testEnv struct {
	t    testing.TB
	cfg  *config.Config
	srv  *Server
	addr string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	root := t.TempDir()
	if err := config.Init(root, "mx.example.org"); err != nil {
		t.Fatal(err)
	}
	cfg := config.Open(root)
	writeFile(t, cfg.Path(config.FileDomains), "example.org\n")
	writeFile(t, cfg.Path(config.FileUsers), testUser+":"+cheapHash(testPass)+"\n"+
		"bob@example.org:"+cheapHash("bobpw")+"\n")
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// checkOnly keeps the cheap test hashes: the default backend would
	// upgrade them to full-cost argon2id at the first login.
	srv := &Server{Config: cfg, Log: log, Auth: &auth.Authenticator{Config: cfg, Backend: checkOnly{cfg}, Logger: log}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testEnv{t: t, cfg: cfg, srv: srv, logs: logs}
}

// checkOnly is an auth.Backend that checks etc/users without rewriting it.
type checkOnly struct{ cfg *config.Config }

func (b checkOnly) Check(_ context.Context, user, pass string) (config.User, error) {
	return auth.Login(b.cfg, user, pass)
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0600); err != nil {
		t.Fatal(err)
	}
}

// start listens on 127.0.0.1:0 and serves until the test ends.
func (e *testEnv) start() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go e.srv.Serve(ctx, c)
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		_ = ln.Close()
		<-done
	})
	e.addr = ln.Addr().String()
	return e.addr
}

func (e *testEnv) port() string {
	_, p, _ := net.SplitHostPort(e.addr)
	return p
}

// mailbox returns alice's Maildir, created.
func (e *testEnv) mailbox() string {
	e.t.Helper()
	dir := filepath.Join(e.cfg.MailDir(), "example.org", "alice")
	if err := maildir.Create(dir); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// deliver puts a message into alice's new/ the way deliver does.
func (e *testEnv) deliver(msg string) string {
	e.t.Helper()
	path, err := maildir.Deliver(e.mailbox(), []byte(msg), strings.NewReader(""))
	if err != nil {
		e.t.Fatal(err)
	}
	return path
}

// files lists the names in alice's cur/ and new/.
func (e *testEnv) files() (cur, nw []string) {
	e.t.Helper()
	dir := e.mailbox()
	cur, err := readNames(filepath.Join(dir, "cur"))
	if err != nil {
		e.t.Fatal(err)
	}
	nw, err = readNames(filepath.Join(dir, "new"))
	if err != nil {
		e.t.Fatal(err)
	}
	return cur, nw
}

// client is a raw line client for dialogs that real clients cannot produce
// (bad input, pipelining, dropped connections).
type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (e *testEnv) dial() *client {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	cl := &client{t: e.t, c: c, r: bufio.NewReader(c)}
	e.t.Cleanup(func() { _ = c.Close() })
	cl.expect("+OK")
	return cl
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line and checks that it begins with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	l := c.line()
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want %q...", l, prefix)
	}
	return l
}

// cmd sends a command line and checks the first line of the reply.
func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// multi reads the rest of a multi-line reply, undoing byte-stuffing.
func (c *client) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

func (c *client) login() {
	c.t.Helper()
	c.cmd("USER "+testUser, "+OK")
	c.cmd("PASS "+testPass, "+OK")
}

// closed checks that the server has closed the connection.
func (c *client) closed() {
	c.t.Helper()
	if l, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("connection still open, got %q", l)
	}
}

// python runs a Python 3 script with the server's port and credentials
// as arguments and returns its standard output.
func (e *testEnv) python(script string, args ...string) string {
	e.t.Helper()
	return e.run(append([]string{"python3", "-c", script, "127.0.0.1", e.port(), testUser, testPass}, args...)...)
}

func (e *testEnv) run(argv ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+e.t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		e.t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", argv[0], err, out, stderr)
	}
	return string(out)
}
