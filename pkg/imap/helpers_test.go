package imap

import (
	"bufio"
	"context"
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
	"mailsrv/pkg/imap/wire"
)

const testPassword = "correct horse battery staple"

var (
	hashOnce sync.Once
	testHash string
)

// testRoot makes a root with user demo@example.test and returns its
// config and the user's Maildir.
func testRoot(t testing.TB) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	if err := config.Init(dir, "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	hashOnce.Do(func() {
		h, err := auth.Hash(testPassword)
		if err != nil {
			panic(err)
		}
		testHash = h
	})
	if err := os.WriteFile(filepath.Join(dir, "etc/domains"), []byte("example.test\n"), 0644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/users"), []byte("demo@example.test:"+testHash+"\n"), 0640); err != nil {
		t.Fatal(err)
	}
	return config.Open(dir), filepath.Join(dir, "mail", "example.test", "demo")
}

// testServer serves on a loopback port until the test ends.
func testServer(t testing.TB, cfg *config.Config, tweak func(*Server)) string {
	t.Helper()
	srv := &Server{Config: cfg, Hostname: "mx.example.test", PollInterval: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tweak != nil {
		tweak(srv)
	}
	return testServerWith(t, srv).addr
}

type running struct {
	addr   string
	cancel func()
}

// testServerWith serves srv; cancel shuts it down as a signal would.
func testServerWith(t testing.TB, srv *Server) running {
	t.Helper()
	if srv.Log == nil {
		srv.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); srv.Serve(ctx, c) }()
		}
	}()
	t.Cleanup(func() { cancel(); _ = ln.Close(); wg.Wait() })
	return running{ln.Addr().String(), cancel}
}

// DefaultLimitsForTest are small limits for the limit tests.
func DefaultLimitsForTest() wire.Limits {
	l := wire.DefaultLimits
	l.MaxLiteral = 1024
	return l
}

// client is a raw line-level client for scripted exchanges.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	cl.line() // greeting
	return cl
}

func (cl *client) send(s string) {
	cl.t.Helper()
	if err := cl.c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		cl.t.Fatal(err)
	}
	if _, err := cl.c.Write([]byte(s)); err != nil {
		cl.t.Fatal(err)
	}
}

func (cl *client) line() string {
	cl.t.Helper()
	if err := cl.c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		cl.t.Fatal(err)
	}
	l, err := cl.br.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read: %v (got %q)", err, l)
	}
	return l
}

// until reads lines (literals included) up to the tagged response of tag.
func (cl *client) until(tag string) string {
	cl.t.Helper()
	var b strings.Builder
	for {
		l := cl.line()
		b.WriteString(l)
		if strings.HasPrefix(l, tag+" ") {
			return b.String()
		}
	}
}

func (cl *client) login() {
	cl.t.Helper()
	cl.send("L LOGIN demo@example.test \"" + testPassword + "\"\r\n")
	if r := cl.until("L"); !strings.Contains(r, "L OK") {
		cl.t.Fatalf("login: %s", r)
	}
}

// clientTimeout guards the raw client's reads and writes against hangs.
var clientTimeout = 10 * time.Second
