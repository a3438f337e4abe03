package authhelper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
)

// envPeer makes the test binary a client of the socket it names, run as
// nobody (TestPeerOtherAccountRefused).
const envPeer = "AUTHHELPER_TEST_PEER"

func TestMain(m *testing.M) {
	if path := os.Getenv(envPeer); path != "" {
		peerChild(path)
		return
	}
	os.Exit(m.Run())
}

// peerChild drops to nobody, then connects to the socket at path twice:
// by hand (is the connection closed without an answer?) and through a
// SocketBackend (does it fall back to its local check?).
func peerChild(path string) {
	if err := privsep.DropTo("nobody"); err != nil {
		fmt.Println("drop:", err)
		os.Exit(1)
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	fmt.Println("connected as", os.Getuid())
	_, _ = fmt.Fprintf(conn, `{"op":"check","user":"bob@example.org","password":%q}`+"\n", password)
	line, err := bufio.NewReader(conn).ReadString('\n')
	switch {
	case line == "" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		fmt.Println("closed without an answer")
	default:
		fmt.Printf("answered %q %v\n", line, err)
	}
	b := &SocketBackend{Path: path, Local: localMark{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	u, err := b.Check(context.Background(), "bob@example.org", password)
	fmt.Println("backend:", u.Addr.String(), err)
	os.Exit(0)
}

// localMark is a local check that says it was used.
type localMark struct{}

func (localMark) Check(_ context.Context, user, _ string) (config.User, error) {
	u := config.User{}
	u.Addr.Local, u.Addr.Domain = "checked-locally", "example.org"
	return u, nil
}

// noLocal fails the test if the local check is used.
type noLocal struct{ t testing.TB }

func (n noLocal) Check(context.Context, string, string) (config.User, error) {
	n.t.Error("checked locally, not through the service")
	return config.User{}, errors.New("local check")
}

// syncBuffer collects a log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// service runs a SocketServer on dir/auth.sock (dir "" for a temporary
// one) until the test ends, and returns the socket's path and its log.
func service(t testing.TB, cfg *config.Config, dir string, tune func(*SocketServer)) (string, *syncBuffer) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "auth.sock")
	ln, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv := &SocketServer{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if tune != nil {
		tune(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("service log:\n%s", logs)
		}
	})
	return path, logs
}

func socketBackend(t testing.TB, path string) *SocketBackend {
	return &SocketBackend{Path: path, Local: noLocal{t}, Timeout: 30 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Right, wrong and unknown users over the socket; the answer carries no
// secret; the socket is mode 0600.
func TestSocketCheck(t *testing.T) {
	cfg := testRoot(t)
	path, logs := service(t, cfg, "", nil)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket %v %v, want a socket of mode 0600", fi.Mode(), err)
	}
	b := socketBackend(t, path)
	u, err := b.Check(context.Background(), "bob@example.org", password)
	if err != nil || u.Addr.String() != "bob@example.org" || u.Hash != "" || u.Attrs["send-as"] != "boss@example.org" {
		t.Fatalf("right password: %+v %v", u, err)
	}
	if _, ok := u.Attrs[auth.AttrScramSHA256]; ok {
		t.Fatal("SCRAM keys left the service")
	}
	for _, tc := range []struct{ user, pass string }{
		{"bob@example.org", "wrong"},
		{"alice@example.org", password},
		{"not an address", password},
	} {
		if _, err := b.Check(context.Background(), tc.user, tc.pass); !errors.Is(err, auth.ErrMismatch) {
			t.Errorf("%q: %v, want ErrMismatch", tc.user, err)
		}
	}
	if n := strings.Count(logs.String(), "msg=check "); n != 4 {
		t.Errorf("%d checks logged, want 4:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), password) {
		t.Error("the password is in the log")
	}
}

// Several clients at once, each with its own connection, all answered
// rightly; and requests sent together on one connection are answered in
// their order.
func TestSocketConcurrentClients(t *testing.T) {
	cfg := testRoot(t)
	path, _ := service(t, cfg, "", nil)
	b := socketBackend(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pass, want := password, error(nil)
			if i%2 == 1 {
				pass, want = "wrong", auth.ErrMismatch
			}
			_, err := b.Check(context.Background(), "bob@example.org", pass)
			if !errors.Is(err, want) {
				errs <- fmt.Errorf("client %d: %v, want %v", i, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	conn := dialService(t, path)
	reqs := `{"op":"lookup","user":"alice@example.org"}` + "\n" +
		`{"op":"check","user":"bob@example.org","password":"` + password + `"}` + "\n" +
		`{"op":"lookup","user":"bob@example.org"}` + "\n"
	if _, err := io.WriteString(conn, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i, want := range []string{`{"found":false}`, `"addr":"bob@example.org"`, `"addr":"bob@example.org"`} {
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, want) {
			t.Fatalf("answer %d: %q %v, want %s", i, line, err, want)
		}
	}
}

// A peer of another account (nobody) is closed without an answer and
// logged, and its SocketBackend falls back to the local check. The socket
// is made world-writable for the test, so that the kernel lets nobody
// connect and the refusal is the service's own.
func TestPeerOtherAccountRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs as root (it starts a client as nobody)")
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path, logs := service(t, testRoot(t), dir, nil)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), envPeer+"="+path)
	out, err := cmd.CombinedOutput()
	nobody, lerr := privsep.Lookup("nobody")
	if lerr != nil {
		t.Fatal(lerr)
	}
	want := fmt.Sprintf("connected as %d\nclosed without an answer\nbackend: checked-locally@example.org <nil>\n", nobody.UID)
	if err != nil || string(out) != want {
		t.Fatalf("peer as nobody: %v\n%s\nwant\n%s", err, out, want)
	}
	refused := fmt.Sprintf("peer refused (only root and this account may connect)\" peer_uid=%d", nobody.UID)
	if n := strings.Count(logs.String(), refused); n != 2 {
		t.Errorf("%d refusals logged, want 2:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "msg=check") {
		t.Error("a refused peer's password was checked")
	}
}

// dialService connects to the service at path, with a deadline as a hang
// guard; the connection is closed when the test ends.
func dialService(t *testing.T, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// staleSocket leaves a socket file at path that nothing answers on, as a
// helper that was killed leaves it.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
}

// Listen replaces a socket file nothing answers on, refuses to start
// while another helper answers, and leaves a file that is not a socket.
func TestListenStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.sock")
	staleSocket(t, path)
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("no stale socket: %v", err)
	}
	ln, err := Listen(path, nil)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	if _, err := Listen(path, nil); !errors.Is(err, ErrRunning) {
		t.Fatalf("second start: %v, want ErrRunning", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the live socket was removed: %v", err)
	}

	plain := filepath.Join(dir, "file")
	write(t, dir, "file", "data")
	if _, err := Listen(plain, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("over a plain file: %v", err)
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "data" {
		t.Fatalf("plain file changed: %q %v", b, err)
	}
}

// An oversized request is answered with an error and its connection
// closed; the service goes on serving others.
func TestSocketOversizedLine(t *testing.T) {
	cfg := testRoot(t)
	path, logs := service(t, cfg, "", nil)
	conn := dialService(t, path)
	big := `{"op":"check","user":"bob@example.org","password":"` + strings.Repeat("x", MaxLine) + "\"}\n"
	if _, err := io.WriteString(conn, big); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	var ans answer
	if err != nil || json.Unmarshal([]byte(line), &ans) != nil || ans.Error != "request too long" {
		t.Fatalf("oversized: %q %v", line, err)
	}
	if rest, err := br.ReadString('\n'); rest != "" || err == nil {
		t.Fatalf("after oversized: %q %v, want the end", rest, err)
	}
	if !strings.Contains(logs.String(), "line longer than") {
		t.Errorf("not logged:\n%s", logs)
	}
	_, err = socketBackend(t, path).Check(context.Background(), "bob@example.org", password)
	if err != nil {
		t.Fatalf("after an oversized request: %v", err)
	}
}

// MaxConns: one more connection is closed at once and logged.
func TestSocketMaxConns(t *testing.T) {
	path, logs := service(t, testRoot(t), "", func(s *SocketServer) { s.MaxConns = 1 })
	first := dialService(t, path)
	if _, err := io.WriteString(first, `{"op":"lookup","user":"bob@example.org"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(first)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"found":true`) {
		t.Fatalf("first: %q %v", line, err)
	}
	second := dialService(t, path)
	if n, err := second.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Fatalf("second connection over MaxConns: %d %v, want closed", n, err)
	}
	if !strings.Contains(logs.String(), "too many connections") {
		t.Errorf("not logged:\n%s", logs)
	}
	// The first is still served.
	if _, err := io.WriteString(first, `{"op":"lookup","user":"alice@example.org"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"found":false`) {
		t.Fatalf("first, again: %q %v", line, err)
	}
}

// A connection that sends nothing for IdleTimeout is closed by the
// service.
func TestSocketIdleTimeout(t *testing.T) {
	path, _ := service(t, testRoot(t), "", func(s *SocketServer) { s.IdleTimeout = 200 * time.Millisecond })
	conn := dialService(t, path)
	if n, err := conn.Read(make([]byte, 10)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %d %v, want EOF", n, err)
	}
}

// A peer that sends requests and never reads the answers is closed once
// the answers have waited IdleTimeout: its goroutine does not stay blocked
// in a write for good.
func TestSocketUnreadAnswers(t *testing.T) {
	path, logs := service(t, testRoot(t), "", func(s *SocketServer) { s.IdleTimeout = 200 * time.Millisecond })
	conn := dialService(t, path)
	reqs := []byte(strings.Repeat(`{"op":"lookup","user":"nobody@example.org"}`+"\n", 1000))
	go func() {
		for range 200 { // 8 MB at most, far beyond the sockets' buffers
			if _, err := conn.Write(reqs); err != nil {
				return
			}
		}
	}()
	for i := 0; !strings.Contains(logs.String(), "idle connection closed"); i++ {
		if i == 400 {
			t.Fatalf("the connection was not closed:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Without the service (no socket; a socket nothing answers on) the
// password is checked locally, right and wrong, and that is logged once.
func TestSocketFallback(t *testing.T) {
	cfg := testRoot(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	staleSocket(t, stale)
	for _, path := range []string{filepath.Join(dir, "missing.sock"), stale} {
		logs := &syncBuffer{}
		b := &SocketBackend{Path: path, Local: auth.UsersBackend{Config: cfg},
			Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		u, err := b.Check(context.Background(), "bob@example.org", password)
		if err != nil || u.Addr.String() != "bob@example.org" {
			t.Errorf("%s: right password: %+v %v", path, u, err)
		}
		if _, err := b.Check(context.Background(), "bob@example.org", "wrong"); !errors.Is(err, auth.ErrMismatch) {
			t.Errorf("%s: wrong password: %v", path, err)
		}
		if n := strings.Count(logs.String(), "auth service not available"); n != 1 {
			t.Errorf("%s: logged %d times, want once:\n%s", path, n, logs)
		}
	}
}

// A service that accepts and does not answer costs Timeout, then the
// login fails as a fault of the server, without a local check.
func TestSocketTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	b := socketBackend(t, path)
	b.Timeout = 200 * time.Millisecond
	_, err = b.Check(context.Background(), "bob@example.org", password)
	if err == nil || errors.Is(err, auth.ErrMismatch) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("mute service: %v, want a timeout", err)
	}
}

// A check through the service upgrades the user's line as a local one
// would: here, SCRAM keys added to a user who had only a hash.
func TestSocketUpgrade(t *testing.T) {
	cfg := testRoot(t)
	hash, err := auth.Hash(password)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cfg.Root, "etc/users", "carol@example.org:"+hash+"\n")
	path, logs := service(t, cfg, "", nil)
	if _, err := socketBackend(t, path).Check(context.Background(), "carol@example.org", password); err != nil {
		t.Fatal(err)
	}
	u, found, err := cfg.LookupUser("carol@example.org")
	if err != nil || !found || u.Attrs[auth.AttrScramSHA256] == "" {
		t.Fatalf("after the check: %+v %v %v, want SCRAM keys", u, found, err)
	}
	if !strings.Contains(logs.String(), "auth upgrade") {
		t.Errorf("upgrade not logged:\n%s", logs)
	}
}
