// Package lmtp keeps long-lived child processes that speak LMTP (RFC 2033)
// on their stdin and stdout, and hands each of them one message at a time.
// It is how mailsrv keeps exec off the per-message path while keeping each
// job in its own program with its own rights: smtpd talks to a pool of
// `queue inject --lmtp`, and `queue run` to a pool of `deliver --lmtp`.
package lmtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Pool runs up to Max children of Argv and reuses idle ones.
type Pool struct {
	Argv    []string
	Env     []string      // extra environment for the children
	Max     int           // concurrency limit; Send waits for a free child
	Timeout time.Duration // for one whole transaction; 0 means 10 minutes
	Name    string        // client name for LHLO
	// Spawn, when set, starts children instead of Argv: it returns the
	// connection to a new child's stdin and stdout and its PID. It is how a
	// process that has dropped privilege gets workers under another
	// account (privsep.Spawner).
	Spawn func() (net.Conn, int, error)

	once sync.Once
	sem  chan struct{}
	mu   sync.Mutex
	idle []*child
}

// Result is the outcome for one recipient.
type Result struct {
	Rcpt string
	Err  error  // nil, or an *smtp.SMTPError, or another error (temporary)
	Text string // on success, the server's reply text (a queue id, say)
}

func (p *Pool) init() {
	p.once.Do(func() {
		if p.Max <= 0 {
			p.Max = 1
		}
		p.sem = make(chan struct{}, p.Max)
	})
}

// Send runs one LMTP transaction: MAIL FROM:<from> (with opts, such as
// AUTH=, which may be nil), RCPT TO each of rcpts, DATA with body. It returns a Result per recipient; an error is returned
// only when the transaction as a whole failed (no child, broken pipe), and
// then nothing was delivered for certain.
func (p *Pool) Send(ctx context.Context, from string, opts *smtp.MailOptions, rcpts []string, body io.Reader) ([]Result, error) {
	p.init()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.sem }()
	c, err := p.get()
	if err != nil {
		return nil, err
	}
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	res, err := c.transaction(from, opts, rcpts, body)
	if err != nil {
		c.kill()
		return nil, err
	}
	p.put(c)
	return res, nil
}

// Close stops the idle children.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.quit()
	}
}

func (p *Pool) get() (*child, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return p.start()
}

func (p *Pool) put(c *child) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// child is one running LMTP server process.
type child struct {
	cmd    *exec.Cmd // nil when spawned by Pool.Spawn
	conn   net.Conn
	client *smtp.Client
}

func (p *Pool) start() (*child, error) {
	if p.Spawn != nil {
		conn, pid, err := p.Spawn()
		if err != nil {
			return nil, err
		}
		return p.hello(&child{conn: conn}, pid)
	}
	toChild, childIn, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	childOut, fromChild, err := os.Pipe()
	if err != nil {
		_ = toChild.Close()
		_ = childIn.Close()
		return nil, err
	}
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = toChild, fromChild, os.Stderr
	cmd.Env = append(os.Environ(), p.Env...)
	err = cmd.Start()
	_ = toChild.Close()
	_ = fromChild.Close()
	if err != nil {
		_ = childIn.Close()
		_ = childOut.Close()
		return nil, fmt.Errorf("start %s: %w", p.Argv[0], err)
	}
	return p.hello(&child{cmd: cmd, conn: &pipeConn{r: childOut, w: childIn}}, cmd.Process.Pid)
}

// hello greets a new child.
func (p *Pool) hello(c *child, pid int) (*child, error) {
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	c.client = smtp.NewClientLMTP(c.conn)
	name := p.Name
	if name == "" {
		name = "localhost"
	}
	if err := c.client.Hello(name); err != nil {
		c.kill()
		return nil, fmt.Errorf("%s: LHLO: %w", p.Argv[0], err)
	}
	slog.Debug("lmtp child started", "prog", p.Argv[0], "pid", pid)
	return c, nil
}

func (c *child) transaction(from string, opts *smtp.MailOptions, rcpts []string, body io.Reader) ([]Result, error) {
	if !ascii(from, rcpts) {
		o := smtp.MailOptions{}
		if opts != nil {
			o = *opts
		}
		o.UTF8 = true
		opts = &o
	}
	if err := c.client.Mail(from, opts); err != nil {
		return nil, err
	}
	res := make([]Result, len(rcpts))
	var accepted []int
	for i, r := range rcpts {
		res[i].Rcpt = r
		if err := c.client.Rcpt(r, nil); err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return nil, err
			}
			res[i].Err = se
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		return res, c.client.Reset()
	}
	w, err := c.client.Data()
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, body); err != nil {
		return nil, err
	}
	// go-smtp keys LMTP replies by recipient; a recipient given twice
	// shares one answer, which is what LMTP's order-based replies give too.
	replies, err := w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	if err != nil && !errors.As(err, &lerr) {
		return nil, err
	}
	for _, i := range accepted {
		if e, ok := lerr[rcpts[i]]; ok {
			res[i].Err = e
		} else if r, ok := replies[rcpts[i]]; ok {
			res[i].Text = r.StatusText
		} else if err != nil {
			res[i].Err = err
		}
	}
	return res, nil
}

func ascii(from string, rcpts []string) bool {
	for _, s := range append([]string{from}, rcpts...) {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
	}
	return true
}

func (c *child) quit() {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	_ = c.client.Quit()
	c.kill()
}

func (c *child) kill() {
	_ = c.conn.Close()
	if c.cmd != nil && c.cmd.ProcessState == nil {
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	}
}

// pipeConn is a net.Conn over the two pipes to a child.
type pipeConn struct {
	r *os.File
	w *os.File
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) Close() error                { return errors.Join(p.r.Close(), p.w.Close()) }
func (p *pipeConn) LocalAddr() net.Addr         { return pipeAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr        { return pipeAddr{} }
func (p *pipeConn) SetDeadline(t time.Time) error {
	return errors.Join(p.r.SetDeadline(t), p.w.SetDeadline(t))
}
func (p *pipeConn) SetReadDeadline(t time.Time) error  { return p.r.SetDeadline(t) }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return p.w.SetDeadline(t) }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
