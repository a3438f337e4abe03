package ucspi

import (
	"os"
	"syscall"
)

// pollableFile returns a new *os.File for fd, non-blocking, when it is a
// socket or a pipe. A terminal or a regular file is left as it is (a
// non-blocking terminal would outlive the process in its parent shell).
func pollableFile(fd int, name string, f *os.File) *os.File {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return f
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFSOCK:
		// As Go does for its own TCP connections: no Nagle delay, which
		// otherwise holds the end of a response until the client's
		// delayed ACK (40 ms under tcpserver without -D). Not TCP: no-op.
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		if err := syscall.SetNonblock(fd, true); err == nil {
			return os.NewFile(uintptr(fd), name)
		}
	case syscall.S_IFIFO:
		if err := syscall.SetNonblock(fd, true); err == nil {
			return os.NewFile(uintptr(fd), name)
		}
	}
	return f
}
