package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conn is a minimal IMAP client connection: commands one at a time,
// responses read line by line, literals skipped.
type conn struct {
	c   net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	tag int
	buf []byte
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		_ = c.Close()
		return nil, err
	}
	cn := &conn{c: c, r: bufio.NewReaderSize(c, 256<<10), w: bufio.NewWriterSize(c, 4<<10)}
	line, err := cn.response()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("* OK")) {
		_ = c.Close()
		return nil, fmt.Errorf("greeting: %q", line)
	}
	return cn, nil
}

func (c *conn) Close() error { return c.c.Close() }

// response reads one response: a line, and when it ends with a literal
// {N} or {N+}, the literal's N bytes (skipped) and the rest of the line.
// It returns the first line without CRLF, in a buffer that the next call
// reuses.
func (c *conn) response() ([]byte, error) {
	c.buf = c.buf[:0]
	first := -1
	for {
		part, err := c.r.ReadSlice('\n')
		c.buf = append(c.buf, part...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if first < 0 {
			first = len(c.buf)
		}
		n, ok := literalSize(c.buf)
		if !ok {
			break
		}
		if _, err := c.r.Discard(n); err != nil {
			return nil, err
		}
		c.buf = c.buf[:first] // keep the first line only
	}
	return bytes.TrimRight(c.buf[:first], "\r\n"), nil
}

// literalSize reports the N of a line ending in "{N}\r\n" or "{N+}\r\n".
func literalSize(line []byte) (int, bool) {
	l := bytes.TrimRight(line, "\r\n")
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(l, '{')
	if open < 0 {
		return 0, false
	}
	num := bytes.TrimSuffix(l[open+1:len(l)-1], []byte("+"))
	n, err := strconv.Atoi(string(num))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// cmd sends one command and reads until its tagged response, calling
// untagged for each untagged response (its first line). It fails unless
// the tagged response is OK.
func (c *conn) cmd(text string, untagged func(line []byte)) error {
	c.tag++
	tag := "b" + strconv.Itoa(c.tag)
	if _, err := io.WriteString(c.w, tag+" "+text+"\r\n"); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	prefix := []byte(tag + " ")
	for {
		line, err := c.response()
		if err != nil {
			return fmt.Errorf("%s: %w", firstWord(text), err)
		}
		if bytes.HasPrefix(line, prefix) {
			if !bytes.HasPrefix(line[len(prefix):], []byte("OK")) {
				return fmt.Errorf("%s: %s", firstWord(text), line)
			}
			return nil
		}
		if untagged != nil && len(line) > 0 && line[0] == '*' {
			untagged(line)
		}
	}
}

func firstWord(s string) string {
	if i := bytes.IndexByte([]byte(s), ' '); i > 0 {
		return s[:i]
	}
	return s
}

func quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
