// Package e2e runs mailsrv's real binaries on loopback with a temporary
// root and talks to them with real clients (Python's smtplib, swaks,
// tcpserver, fetchmail, ...). Every test builds what it needs once, starts
// its own daemons on free ports, and stops them by PID.
package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/queue"
)

// DemoPassword is the password of every test user.
const DemoPassword = "correct horse battery staple"

var (
	binDir   string
	buildMu  sync.Mutex
	built    = map[string]error{}
	demoHash string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailsrv-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// bin builds cmd/NAME once per test run and returns its path.
func bin(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	err, ok := built[name]
	if !ok {
		args := []string{"build", "-o", filepath.Join(binDir, name)}
		if os.Getenv("MAILSRV_E2E_RACE") != "" { // make check: daemons built with -race
			args = append(args, "-race")
		}
		out, e := exec.Command("go", append(args, "mailsrv/cmd/"+name)...).CombinedOutput()
		if e != nil {
			e = fmt.Errorf("go build %s: %v\n%s", name, e, out)
		}
		built[name], err = e, e
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(binDir, name)
}

// Root is a temporary mailsrv root with domain example.test and user
// demo@example.test.
type Root struct {
	Dir string
	t   testing.TB
	// libexec, when set, is where start takes the programs from (and
	// MAILSRV_LIBEXEC): a copy the system accounts may run.
	libexec string
}

func newRoot(t testing.TB) *Root {
	t.Helper()
	dir := t.TempDir()
	if err := config.Init(dir, "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := queue.Create(filepath.Join(dir, "queue")); err != nil {
		t.Fatal(err)
	}
	r := &Root{Dir: dir, t: t}
	r.write("etc/domains", "example.test\n")
	r.addUser("demo@example.test")
	return r
}

func (r *Root) write(rel, text string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.Dir, rel), []byte(text), 0644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Root) appendFile(rel, text string) {
	r.t.Helper()
	f, err := os.OpenFile(filepath.Join(r.Dir, rel), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0644)
	if err == nil {
		_, err = f.WriteString(text)
		err = errorsJoin(err, f.Close())
	}
	if err != nil {
		r.t.Fatal(err)
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// addUser adds a user with DemoPassword (hashed once per run: argon2id is
// slow on purpose).
func (r *Root) addUser(addr string) {
	r.t.Helper()
	buildMu.Lock()
	if demoHash == "" {
		h, err := auth.Hash(DemoPassword)
		if err != nil {
			buildMu.Unlock()
			r.t.Fatal(err)
		}
		demoHash = h
	}
	h := demoHash
	buildMu.Unlock()
	r.appendFile("etc/users", addr+":"+h+"\n")
	local, domain, _ := strings.Cut(addr, "@")
	if err := maildir.Create(filepath.Join(r.Dir, "mail", domain, local)); err != nil {
		r.t.Fatal(err)
	}
}

// mailbox returns the Maildir of a user of example.test.
func (r *Root) mailbox(local string) string {
	return filepath.Join(r.Dir, "mail", "example.test", local)
}

// messages returns the files in a Maildir's new/ and cur/.
func messages(t testing.TB, maildir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(maildir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, filepath.Join(maildir, sub, e.Name()))
		}
	}
	return out
}

// Proc is a running daemon.
type Proc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Log returns what the daemon wrote on stderr so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// start runs bin/prog --root DIR args... until the test ends; its stderr
// is shown if the test fails.
func (r *Root) start(prog string, args ...string) *Proc {
	r.t.Helper()
	path, libexec := bin(r.t, prog), binDir
	if r.libexec != "" {
		path, libexec = filepath.Join(r.libexec, prog), r.libexec
	}
	cmd := exec.Command(path, append([]string{"--root", r.Dir}, args...)...)
	cmd.Env = append(os.Environ(), "MAILSRV_LIBEXEC="+libexec)
	p := &Proc{cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p.mu, p.log}
	cmd.Stderr = lockedWriter{p.mu, p.log}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	r.t.Cleanup(func() {
		p.Stop()
		if strings.Contains(p.Log(), "WARNING: DATA RACE") {
			r.t.Errorf("%s: the race detector found a data race", prog)
		}
		if r.t.Failed() {
			r.t.Logf("%s log:\n%s", prog, p.Log())
		}
	})
	return p
}

// Stop ends the daemon and its children: SIGTERM, then SIGKILL after 5 s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill sends SIGKILL to the daemon and its children and waits.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, below the kernel's ephemeral range: a port taken from that range
// (port 0) may be handed out meanwhile as the source port of any
// connection, and the daemon's later bind fails with EADDRINUSE.
func freeAddr(t testing.TB) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &low)
	}
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(max(1, low-10000)))
		if l, err := net.Listen("tcp", addr); err == nil {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return addr
		}
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return ""
}

// waitListen waits until something accepts connections on addr.
func waitListen(t testing.TB, addr string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 10s", addr)
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startQueue starts `queue run` with a short retry schedule.
func (r *Root) startQueue(args ...string) *Proc {
	bin(r.t, "deliver") // queue run runs it
	return r.start("queue", append([]string{"run", "--retry", "1s,2s"}, args...)...)
}

// startSMTPD starts smtpd on a free port and returns its address.
func (r *Root) startSMTPD(args ...string) (*Proc, string) {
	addr := freeAddr(r.t)
	bin(r.t, "queue") // smtpd runs it
	p := r.start("smtpd", append([]string{"--listen", addr}, args...)...)
	waitListen(r.t, addr)
	return p, addr
}

// python runs a Python 3 script with args and returns its output.
func python(t testing.TB, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("python3", append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// readFile returns a file's contents.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// tcpserve runs argv under tcpserver (one process per connection, as
// root) with env added, and returns the address.
func tcpserve(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	addr := freeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	args := append([]string{"-HRl0", host, port, "env"}, env...)
	tcp := exec.Command("tcpserver", append(args, argv...)...)
	tcp.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log strings.Builder
	tcp.Stderr = &log
	if err := tcp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-tcp.Process.Pid, syscall.SIGKILL)
		_ = tcp.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(argv[0]), log.String())
		}
	})
	waitListen(t, addr)
	return addr
}
