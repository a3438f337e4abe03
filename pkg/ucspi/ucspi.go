// Package ucspi lets a daemon serve either one connection handed to it on
// stdin/stdout by a UCSPI server (tcpserver, s6-tcpserver, inetd), learning
// the peer from the environment (TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP,
// TCPLOCALPORT; see tcp-environ(5)), or many connections from a listener of
// its own. Both give the daemon a net.Conn, so its session code is the same.
package ucspi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// StdioConn is a net.Conn over the process's stdin and stdout.
type StdioConn struct {
	in, out     *os.File
	local, peer net.Addr

	once   sync.Once
	err    error
	closed atomic.Bool
}

// Stdio returns the connection on fd 0/1, with the addresses from the UCSPI
// environment (127.0.0.1:0 ... when they are unset, as under a pipe).
// Sockets and pipes are made non-blocking first, so that the Go runtime
// polls them and deadlines (idle timeouts) work: os.Stdin and os.Stdout,
// opened on blocking descriptors, silently ignore deadlines.
func Stdio() *StdioConn {
	return &StdioConn{
		in:    pollableFile(0, "/dev/stdin", os.Stdin),
		out:   pollableFile(1, "/dev/stdout", os.Stdout),
		local: envAddr("TCPLOCALIP", "TCPLOCALPORT"),
		peer:  envAddr("TCPREMOTEIP", "TCPREMOTEPORT"),
	}
}

func envAddr(ipVar, portVar string) net.Addr {
	ip := net.ParseIP(os.Getenv(ipVar))
	if ip == nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	port, _ := strconv.Atoi(os.Getenv(portVar))
	return &net.TCPAddr{IP: ip, Port: port}
}

func (c *StdioConn) Read(p []byte) (int, error) {
	n, err := c.in.Read(p)
	return n, netError("read", err)
}

func (c *StdioConn) Write(p []byte) (int, error) {
	n, err := c.out.Write(p)
	return n, netError("write", err)
}

// netError makes file errors look like a socket's, as protocol libraries
// expect: a deadline is a net.Error whose Timeout() is true, a closed
// descriptor is net.ErrClosed.
func netError(op string, err error) error {
	switch {
	case err == nil || err == io.EOF:
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &net.OpError{Op: op, Net: "stdio", Err: os.ErrDeadlineExceeded}
	case errors.Is(err, os.ErrClosed):
		return net.ErrClosed
	}
	return err
}
func (c *StdioConn) LocalAddr() net.Addr  { return c.local }
func (c *StdioConn) RemoteAddr() net.Addr { return c.peer }

// Close closes both descriptors, once; later calls return the first result.
func (c *StdioConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.err = errors.Join(c.in.Close(), c.out.Close())
	})
	return c.err
}

// SetDeadline sets both deadlines. Deadlines work when fd 0 and 1 are
// sockets or pipes that Go's poller accepted; otherwise they are ignored.
func (c *StdioConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// SetReadDeadline returns net.ErrClosed once the connection is closed (a
// closed file's own error is not one), which protocol libraries that set a
// deadline before each read take as the quiet end of the session.
func (c *StdioConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if err := c.in.SetReadDeadline(t); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return err
	}
	return nil
}

func (c *StdioConn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if err := c.out.SetWriteDeadline(t); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return err
	}
	return nil
}

// Handler serves one connection and closes it.
type Handler func(ctx context.Context, c net.Conn)

// Serve accepts connections on ln and runs h for each in its own
// goroutine, until ctx ends; then it stops accepting and waits for the
// sessions to finish. A panic in a session is logged with its stack by the
// handler's own recover; Serve itself never dies of one connection. The
// caller makes the listener, so that it can drop privileges between
// binding and serving (daemon.Serve).
func Serve(ctx context.Context, ln net.Listener, h Handler) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	slog.Info("listening", "addr", ln.Addr().String())
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) ||
				isTemporaryAccept(err) {
				// EMFILE and friends: back off instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				slog.Warn("accept failed, backing off", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			wg.Wait()
			return err
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			h(ctx, c)
		}()
	}
}

func isTemporaryAccept(err error) bool {
	var se interface{ Temporary() bool }
	return errors.As(err, &se) && se.Temporary()
}
