// Package authhelper lets a daemon that may not read etc/users (smtpd
// running as mailsrv-smtpd) ask a helper that may: is there such a user,
// and is this its password. The helper is `mailctl auth-helper`, started
// by the daemon, still root, under the account that owns the hashes
// (mailsrv-mail), and talked to on its stdin and stdout for as long as the
// daemon lives. Hashes and SCRAM keys never leave the helper.
//
// The same helper also runs as a service, `mailctl auth-helper --listen
// ROOT/run/auth.sock` (SocketServer, listen.go), for imapd and pop3d
// (SocketBackend, socket.go): one long-lived process where argon2's
// memory stays resident (KeepArgonMemory, memory.go), instead of being
// faulted in by the process of every session.
//
// The protocol is one JSON object a line each way, a request then its
// answer, at most MaxLine bytes:
//
//	{"op":"lookup","user":"bob@example.org"}
//	{"found":true,"addr":"bob@example.org","attrs":{"send-as":"..."}}
//	{"op":"check","user":"bob@example.org","password":"..."}
//	{"found":true,"addr":"bob@example.org","attrs":{}}      right
//	{"found":false}                                         wrong, or no such user
//	{"error":"..."}                                         a fault (temporary)
package authhelper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
)

// MaxLine bounds a request or an answer.
const MaxLine = 16 << 10

// Timeout bounds the wait for one answer. A helper that does not answer in
// time is killed (its daemon then stops, see daemon.StopWhen): one stuck
// helper must not hang every session waiting for it.
var Timeout = 30 * time.Second

type request struct {
	Op       string `json:"op"`
	User     string `json:"user"`
	Password string `json:"password,omitempty"`
}

type answer struct {
	Found bool              `json:"found"`
	Addr  string            `json:"addr,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
	Error string            `json:"error,omitempty"`
}

// secretAttrs are the attributes that stay in the helper.
var secretAttrs = []string{auth.AttrScramSHA256}

// Serve answers requests from r on w until r ends (the helper side).
// Passwords are checked by auth.UsersBackend, which also upgrades old
// hashes when the helper may write etc/users.
func Serve(r io.Reader, w io.Writer, cfg *config.Config, log *slog.Logger) error {
	return serve(r, w, auth.UsersBackend{Config: cfg, Logger: log}, cfg, log)
}

// serve is Serve with the passwords checked by backend (FuzzServe's is
// quick).
func serve(r io.Reader, w io.Writer, backend auth.Backend, cfg *config.Config, log *slog.Logger) error {
	br := bufio.NewReaderSize(r, 4096)
	bw := bufio.NewWriter(w)
	for {
		line, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, errTooLong) {
			// Said before the end, so that the other side knows why.
			return errors.Join(err, writeAnswer(bw, answer{Error: "request too long"}))
		}
		if err != nil {
			return err
		}
		var req request
		var ans answer
		if err := json.Unmarshal(line, &req); err != nil {
			ans.Error = "bad request"
		} else {
			ans = handle(backend, cfg, req)
			if req.Op == "check" {
				log.Debug("check", "user", loggedUser(req.User), "found", ans.Found, "error", ans.Error != "")
			}
		}
		if err := writeAnswer(bw, ans); err != nil {
			return err
		}
	}
}

func writeAnswer(bw *bufio.Writer, ans answer) error {
	out, err := json.Marshal(ans)
	if err != nil {
		return err
	}
	if _, err := bw.Write(append(out, '\n')); err != nil {
		return err
	}
	return bw.Flush()
}

// loggedUser bounds a user name in the log: it is client input.
func loggedUser(user string) string {
	if len(user) > 128 {
		return user[:128] + "..."
	}
	return user
}

func handle(b auth.Backend, cfg *config.Config, req request) answer {
	var u config.User
	var found bool
	var err error
	switch req.Op {
	case "lookup":
		a, perr := address.Parse(req.User)
		if perr != nil {
			return answer{}
		}
		u, found, err = cfg.LookupUser(a.Key())
	case "check":
		u, err = b.Check(context.Background(), req.User, req.Password)
		afterCheck()
		found = err == nil
		if errors.Is(err, auth.ErrMismatch) {
			return answer{}
		}
	default:
		return answer{Error: "unknown op"}
	}
	if err != nil {
		return answer{Error: err.Error()}
	}
	if !found {
		return answer{}
	}
	attrs := maps.Clone(u.Attrs)
	for _, k := range secretAttrs {
		delete(attrs, k)
	}
	return answer{Found: true, Addr: u.Addr.String(), Attrs: attrs}
}

var errTooLong = fmt.Errorf("authhelper: line longer than %d bytes", MaxLine)

// readLine reads one line of at most MaxLine bytes, without its newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxLine {
			return nil, errTooLong
		}
		if err == nil {
			return bytes.TrimRight(buf, "\r\n"), nil
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// Client is the daemon's side. It implements auth.Backend, and its Lookup
// fits config.Config.Lookup. Requests are answered one at a time.
type Client struct {
	mu   sync.Mutex
	w    io.WriteCloser
	r    *bufio.Reader
	cmd  *exec.Cmd
	done chan struct{} // closed when the helper process has ended
	err  error         // how it ended, once done is closed
}

// Start runs argv (`mailctl --root R auth-helper`) as account a: call it
// before dropping privilege.
func Start(argv []string, a privsep.Account) (*Client, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = a.SysProcAttr()
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	r, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start auth helper: %w", err)
	}
	c := &Client{w: w, r: bufio.NewReader(r), cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Done is closed when the helper started by Start has ended. It cannot be
// started again once the daemon has dropped its privileges: the daemon
// should stop and let its supervisor start it afresh.
func (c *Client) Done() <-chan struct{} { return c.done }

// NewClient talks to a helper over r and w (tests, or another transport).
func NewClient(r io.Reader, w io.WriteCloser) *Client {
	return &Client{w: w, r: bufio.NewReader(r)}
}

func (c *Client) ask(req request) (answer, error) {
	out, err := json.Marshal(req)
	if err != nil {
		return answer{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		t := time.AfterFunc(Timeout, func() { _ = c.cmd.Process.Kill() })
		defer t.Stop()
	}
	if _, err := c.w.Write(append(out, '\n')); err != nil {
		return answer{}, fmt.Errorf("auth helper: %w", err)
	}
	line, err := readLine(c.r)
	if err != nil {
		return answer{}, fmt.Errorf("auth helper: %w", err)
	}
	var ans answer
	if err := json.Unmarshal(line, &ans); err != nil {
		return answer{}, fmt.Errorf("auth helper: bad answer: %w", err)
	}
	if ans.Error != "" {
		return answer{}, fmt.Errorf("auth helper: %s", ans.Error)
	}
	return ans, nil
}

func (ans answer) user() (config.User, error) {
	a, err := address.Parse(ans.Addr)
	if err != nil {
		return config.User{}, fmt.Errorf("auth helper: bad address %q", ans.Addr)
	}
	return config.User{Addr: a, Attrs: ans.Attrs}, nil
}

// Check implements auth.Backend.
func (c *Client) Check(_ context.Context, username, password string) (config.User, error) {
	if strings.ContainsAny(username, "\x00") {
		return config.User{}, auth.ErrMismatch
	}
	ans, err := c.ask(request{Op: "check", User: username, Password: password})
	if err != nil {
		return config.User{}, err
	}
	if !ans.Found {
		return config.User{}, auth.ErrMismatch
	}
	return ans.user()
}

// Lookup finds a user by address key, without its hash.
func (c *Client) Lookup(key string) (config.User, bool, error) {
	ans, err := c.ask(request{Op: "lookup", User: key})
	if err != nil || !ans.Found {
		return config.User{}, false, err
	}
	u, err := ans.user()
	return u, err == nil, err
}

// Close ends the helper.
func (c *Client) Close() error {
	err := c.w.Close()
	if c.done != nil {
		<-c.done
		if err == nil {
			err = c.err
		}
	}
	return err
}
