package smtpd

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// StdioConn is a net.Conn over two files: the client's bytes arrive on In
// and our replies leave on Out. Under a UCSPI server (tcpserver,
// s6-tcpserver) or inetd both are the connected socket on fd 0 and fd 1;
// the peer's address comes from the environment (see tcp-environ(5)).
type StdioConn struct {
	In, Out *os.File
	Local   net.Addr
	Remote  net.Addr

	once   sync.Once
	err    error
	closed atomic.Bool // Close was called
}

// NewStdioConn returns the connection on fd 0/1, its addresses taken from
// TCPREMOTEIP/TCPREMOTEPORT and TCPLOCALIP/TCPLOCALPORT. The descriptors
// are made non-blocking when they are sockets or pipes, so that the Go
// runtime polls them and read deadlines (the idle timeout) work.
func NewStdioConn() *StdioConn {
	return &StdioConn{
		In:     pollable(0, "/dev/stdin"),
		Out:    pollable(1, "/dev/stdout"),
		Local:  ucspiAddr("TCPLOCALIP", "TCPLOCALPORT"),
		Remote: ucspiAddr("TCPREMOTEIP", "TCPREMOTEPORT"),
	}
}

// pollable opens fd as a file the runtime poller can wait on, when it is a
// socket or a pipe; a terminal or regular file is left blocking (a
// non-blocking terminal would outlive us in the parent shell).
func pollable(fd int, name string) *os.File {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err == nil {
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFSOCK, syscall.S_IFIFO:
			if err := syscall.SetNonblock(fd, true); err == nil {
				return os.NewFile(uintptr(fd), name)
			}
		}
	}
	return os.NewFile(uintptr(fd), name)
}

// ucspiAddr builds an address from two UCSPI environment variables; an
// unset IP gives a "pipe" address, as for a local client.
func ucspiAddr(ipVar, portVar string) net.Addr {
	ip := net.ParseIP(os.Getenv(ipVar))
	if ip == nil {
		return pipeAddr{}
	}
	port, _ := strconv.Atoi(os.Getenv(portVar))
	return &net.TCPAddr{IP: ip, Port: port}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "stdio" }

func (c *StdioConn) Read(b []byte) (int, error) {
	n, err := c.In.Read(b)
	return n, netError(err)
}

func (c *StdioConn) Write(b []byte) (int, error) {
	n, err := c.Out.Write(b)
	return n, netError(err)
}

func (c *StdioConn) LocalAddr() net.Addr  { return c.Local }
func (c *StdioConn) RemoteAddr() net.Addr { return c.Remote }

// netError turns the file errors that mean "timed out" and "closed" into
// the ones a network connection returns, which is what go-smtp checks for
// (a *PathError is not a net.Error).
func netError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	case errors.Is(err, os.ErrClosed):
		return net.ErrClosed
	}
	return err
}

// Close closes both files once; later calls return the first result.
func (c *StdioConn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		errIn := c.In.Close()
		errOut := c.Out.Close()
		c.err = errors.Join(errIn, errOut)
	})
	return c.err
}

// SetDeadline sets both deadlines. Files that cannot have one (a terminal,
// a regular file) are served without: that is not an error.
func (c *StdioConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// A closed file's deadline error is not os.ErrClosed; go-smtp, which sets
// a deadline before each read, needs net.ErrClosed to end quietly.
func (c *StdioConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return noDeadlineOK(c.In.SetReadDeadline(t))
}

func (c *StdioConn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return noDeadlineOK(c.Out.SetWriteDeadline(t))
}

func noDeadlineOK(err error) error {
	if errors.Is(err, os.ErrNoDeadline) {
		return nil
	}
	return err
}

// oneConnListener hands out one connection, then blocks in Accept until
// that connection is closed and reports net.ErrClosed, which ends
// smtp.Server.Serve when the session is over.
type oneConnListener struct {
	conn   net.Conn
	mu     sync.Mutex
	served bool
	done   chan struct{}
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{done: make(chan struct{})}
	l.conn = &closeNotifyConn{Conn: c, done: l.done}
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	first := !l.served
	l.served = true
	l.mu.Unlock()
	if first {
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// closeNotifyConn closes done when the connection is closed.
type closeNotifyConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}
