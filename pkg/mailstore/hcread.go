package mailstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// A first search reads the header of every message file (100,000 in
// bench/imap) to learn the cache's entries. Through os.Open and a
// bufio.Reader that cost, beyond the open, read and close themselves,
// two fcntl calls and the poller's set-up per file (os.File makes a
// descriptor non-blocking, then finds a regular file cannot be polled),
// a 4 KB buffer and the header's growing copy: a fifth of the search's
// CPU, and garbage. readHeaderFile uses the system calls alone and reads
// into a buffer the Folder's cache reuses; headerEnd finds the end of the
// header where readHeaderBlock does (FuzzHeaderEnd holds them together).

// headerFirstRead is what is read of a file at first; a larger header
// (real headers are 2-8 KB) is read on, twice as much each time.
const headerFirstRead = 8192

// readHeaderFile returns the header of the file at p (as readHeaderBlock
// reads it, before ToCRLF) in the cache's reused buffer, valid until its
// next call, and the file's status.
func (hc *headerCache) readHeaderFile(dir, p string, st *syscall.Stat_t) ([]byte, error) {
	if len(p) > len(dir)+1 && p[len(dir)] == '/' && p[:len(dir)] == dir {
		return hc.readHeaderIn(dir, p[len(dir)+1:], st)
	}
	return hc.readHeaderIn("", p, st)
}

// readHeaderIn is readHeaderFile of the file rel of the folder directory
// dir (of rel itself when dir is "").
func (hc *headerCache) readHeaderIn(dir, rel string, st *syscall.Stat_t) ([]byte, error) {
	fd, err := hc.openIn(dir, rel)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, rel), Err: err}
	}
	hdr, err := hc.readHeaderFD(fd, st)
	if cerr := syscall.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: filepath.Join(dir, rel), Err: err}
	}
	return hdr, nil
}

// openIn opens rel, a file of the folder directory dir, relative to a
// descriptor of dir that the batch keeps (the kernel then looks up
// "cur/NAME", not every directory of the path: a fifth of the cost of
// open); by its path when not found from the descriptor (dir replaced
// meanwhile), or when dir is "" (rel is then the path).
func (hc *headerCache) openIn(dir, rel string) (int, error) {
	const flags = syscall.O_RDONLY | syscall.O_CLOEXEC
	if dir == "" {
		return retryEINTR(func() (int, error) { return syscall.Open(rel, flags, 0) })
	}
	if !hc.dirTried {
		hc.dirTried = true
		if fd, err := retryEINTR(func() (int, error) {
			return syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		}); err == nil {
			hc.dirfd, hc.hasDir = fd, true
		}
	}
	if hc.hasDir {
		fd, err := retryEINTR(func() (int, error) { return syscall.Openat(hc.dirfd, rel, flags, 0) })
		if !errors.Is(err, syscall.ENOENT) {
			return fd, err
		}
	}
	return retryEINTR(func() (int, error) { return syscall.Open(dir+"/"+rel, flags, 0) })
}

// closeDir closes the descriptor of the folder directory, at the end of
// a batch.
func (hc *headerCache) closeDir() {
	if hc.hasDir {
		_ = syscall.Close(hc.dirfd) // a directory opened read only
	}
	hc.dirfd, hc.hasDir, hc.dirTried = 0, false, false
}

func retryEINTR(open func() (int, error)) (int, error) {
	for {
		fd, err := open()
		if !errors.Is(err, syscall.EINTR) {
			return fd, err
		}
	}
}

func (hc *headerCache) readHeaderFD(fd int, st *syscall.Stat_t) ([]byte, error) {
	if err := syscall.Fstat(fd, st); err != nil {
		return nil, err
	}
	buf := hc.rbuf[:0]
	for want := headerFirstRead; ; want = min(2*want, maxHeader) {
		if cap(buf) < want {
			buf = append(buf[:cap(buf)], make([]byte, want-cap(buf))...)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):want])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return buf, nil // as readHeaderBlock: what was read
		}
		buf = buf[:len(buf)+n]
		hc.rbuf = buf
		if end, found := headerEnd(buf); found {
			return buf[:end], nil
		}
		if n == 0 || len(buf) >= maxHeader {
			return buf, nil // the end of the file, or of what is read of a header
		}
	}
}

// headerEnd returns where the header at the start of b ends, after the
// first blank line, as readHeaderBlock finds it: a line of CR and LF
// alone, where a line longer than its 4096-byte buffer is judged by what
// follows its last full 4096 bytes. found is false when b holds no end.
func headerEnd(b []byte) (end int, found bool) {
	for p := 0; p < len(b); {
		nl := bytes.IndexByte(b[p:], '\n')
		if nl < 0 {
			return len(b), false
		}
		e := p + nl + 1
		q := p
		for e-q > 4096 {
			q += 4096 // bufio.Reader's pieces of a long line
		}
		if len(bytes.Trim(b[q:e], "\r\n")) == 0 {
			return e, true
		}
		p = e
	}
	return len(b), false
}

// appendCRLF appends src to dst with each LF not after a CR made CRLF, as
// ToCRLF does, a line at a time rather than a byte at a time.
func appendCRLF(dst, src []byte) []byte {
	dst = slices.Grow(dst, len(src)+bytes.Count(src, []byte("\n")))
	prev := byte(0)
	for {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			return append(dst, src...)
		}
		if i > 0 {
			prev = src[i-1]
		}
		dst = append(dst, src[:i]...)
		if prev != '\r' {
			dst = append(dst, '\r')
		}
		dst = append(dst, '\n')
		prev, src = '\n', src[i+1:]
	}
}
