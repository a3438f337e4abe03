package smtpd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/queue"
)

// hangGuard bounds every read and write of a test client: it only turns a
// hang into a failure, it is not a timing assertion.
const hangGuard = 60 * time.Second

// newRoot makes a mailsrv root with two local domains: example.test (user
// alice, alias postmaster -> alice) and catchall.test (everything -> alice).
func newRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := config.Init(root, "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	hash := testHash()
	files := map[string]string{
		config.FileDomains: "example.test\ncatchall.test\n",
		config.FileUsers:   "alice@example.test:" + hash + "\n",
		config.FileAliases: "postmaster@example.test: alice@example.test\n@catchall.test: alice@example.test\n",
	}
	for rel, text := range files {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(text), 0644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// testHash returns one argon2id hash for every test root: hashing is slow
// on purpose, and smtpd never checks it.
var testHash = sync.OnceValue(func() string {
	h, err := auth.Hash("secret-password")
	if err != nil {
		panic(err)
	}
	return h
})

// fakeInjector keeps messages in memory, or fails with err.
type fakeInjector struct {
	mu      sync.Mutex
	err     error
	msgs    []injected
	discard bool // count messages, keep none (for benchmarks)
	n       int
}

type injected struct {
	env *queue.Envelope
	msg string
}

func (f *fakeInjector) Inject(_ context.Context, env *queue.Envelope, msg io.Reader) (string, error) {
	data, err := io.ReadAll(msg)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.n++
	if !f.discard {
		f.msgs = append(f.msgs, injected{env: env, msg: string(data)})
	}
	return fmt.Sprintf("Q%d", f.n), nil
}

func (f *fakeInjector) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeInjector) queued() []injected {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]injected(nil), f.msgs...)
}

// startServer runs a Server on a loopback port with a fake injector: the
// one in opts, or a new one.
func startServer(t testing.TB, opts Options) (string, *fakeInjector) {
	t.Helper()
	inj, ok := opts.Injector.(*fakeInjector)
	if !ok {
		inj = &fakeInjector{}
	}
	if opts.Config == nil {
		opts.Config = config.Open(newRoot(t))
	}
	opts.Injector = inj
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String(), inj
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// client is a raw SMTP client, for dialogs that a polite client library
// would refuse to send (bare LF, overlong lines, BDAT by hand).
type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// dial connects and reads the greeting.
func dial(t testing.TB, addr string) *client {
	t.Helper()
	cl := dialRaw(t, addr)
	cl.expect("220 ")
	return cl
}

// dialRaw connects and reads nothing.
func dialRaw(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes raw octets.
func (c *client) send(raw string) {
	c.t.Helper()
	if err := c.c.SetWriteDeadline(time.Now().Add(hangGuard)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := io.WriteString(c.c, raw); err != nil {
		c.t.Fatalf("sending %.40q: %v", raw, err)
	}
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (c *client) reply() (string, error) {
	if err := c.c.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		return "", err
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return line, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line, nil
		}
	}
}

// expect reads a reply and checks that it starts with want.
func (c *client) expect(want string) string {
	c.t.Helper()
	line, err := c.reply()
	if err != nil {
		c.t.Fatalf("want %q, got %q and %v", want, line, err)
	}
	if !strings.HasPrefix(line, want) {
		c.t.Fatalf("want %q, got %q", want, line)
	}
	return line
}

// cmd sends one command line and checks the reply.
func (c *client) cmd(line, want string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(want)
}

// expectClosed checks that the server has closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if err := c.c.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
		c.t.Fatal(err)
	}
	if line, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("want the connection closed, got %q", line)
	}
}

func configFor(root string) *config.Config { return config.Open(root) }

func writeFile(root, rel, text string) error {
	return os.WriteFile(filepath.Join(root, rel), []byte(text), 0644)
}

func (f *fakeInjector) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}
