package ucspi

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// A StdioConn over a socket pair behaves like a socket to protocol code: a
// read deadline is a net timeout, close is idempotent, a deadline after
// close is net.ErrClosed, and the single listener ends with a
// net.ErrClosed once the connection is closed.
func TestStdioConnOverSocketpair(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	dup, err := syscall.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	c := &StdioConn{
		in:  pollableFile(fds[0], "in", os.NewFile(uintptr(fds[0]), "in")),
		out: pollableFile(dup, "out", os.NewFile(uintptr(dup), "out")),
	}
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a net timeout", err)
	}
	l := NewSingleListener(c)
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := l.Accept(); done <- err }()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := c.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("deadline after close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after the connection closed")
	}
}
