package ucspi

import (
	"fmt"
	"net"
	"sync"
)

// ErrDone is returned by a SingleListener's Accept once its connection has
// been closed: a server's Serve loop ends with it. It is a net.ErrClosed,
// which servers take as a normal end.
var ErrDone = fmt.Errorf("ucspi: the one connection has ended: %w", net.ErrClosed)

// SingleListener hands one connection (such as Stdio()) to a server that
// wants a net.Listener (go-smtp's Serve), and then reports itself done
// when that connection is closed, so the process can exit.
type SingleListener struct {
	conn net.Conn
	once sync.Once
	sent bool
	done chan struct{}
}

// NewSingleListener returns a listener that yields conn once.
func NewSingleListener(conn net.Conn) *SingleListener {
	return &SingleListener{conn: conn, done: make(chan struct{})}
}

// Accept returns the connection the first time, then blocks until it is
// closed and returns ErrDone.
func (l *SingleListener) Accept() (net.Conn, error) {
	if !l.sent {
		l.sent = true
		return &notifyConn{Conn: l.conn, l: l}, nil
	}
	<-l.done
	return nil, ErrDone
}

// Done is closed when the connection has been closed.
func (l *SingleListener) Done() <-chan struct{} { return l.done }

func (l *SingleListener) Close() error   { return nil }
func (l *SingleListener) Addr() net.Addr { return l.conn.LocalAddr() }

type notifyConn struct {
	net.Conn
	l *SingleListener
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.l.once.Do(func() { close(c.l.done) })
	return err
}
