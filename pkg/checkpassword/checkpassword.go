// Package checkpassword speaks D. J. Bernstein's checkpassword interface
// (https://cr.yp.to/checkpwd/interface.html) both ways.
//
// A checkpassword program reads "user NUL password NUL timestamp NUL" (at
// most 512 bytes) from file descriptor 3. If the password is right it runs
// the program named by its own arguments, with USER and HOME set; if not it
// exits 1. Exit 2 means it was misused, 111 a temporary failure.
//
// Program is the client: daemons use it as an auth.Backend to check
// passwords with an external program (checkpassword-pam, to serve system
// accounts, or any other). Serve is the server: `mailctl checkpassword`
// checks against etc/users and runs the next program.
package checkpassword

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// Exit codes of the interface.
const (
	ExitOK     = 0
	ExitBad    = 1   // wrong user name or password
	ExitMisuse = 2   // called the wrong way
	ExitTemp   = 111 // temporary failure
)

// MaxInput is the longest input on descriptor 3 that checkpassword
// programs read.
const MaxInput = 512

// EnvThrottled is set in the environment of a program started by
// Program, telling Serve that the caller already throttles failed logins
// so that they are not counted twice.
const EnvThrottled = "MAILSRV_THROTTLED"

// DefaultTimeout bounds a run of the external program.
const DefaultTimeout = 10 * time.Second

// ErrTemporary wraps exit 111 and timeouts of the external program.
var ErrTemporary = errors.New("checkpassword: temporary failure")

// Program runs an external checkpassword program. It implements
// auth.Backend.
type Program struct {
	Argv []string // the program and its own arguments
	// Next is the program checkpassword runs on success; it must print the
	// environment as NAME=VALUE lines, from which USER and HOME are read.
	// Default: /usr/bin/env.
	Next    []string
	Timeout time.Duration // default DefaultTimeout
}

// RawLoginNames implements auth.RawNames: a checkpassword program gets
// "bob", not "bob@example.org".
func (p *Program) RawLoginNames() {}

// Check implements auth.Backend: it returns auth.ErrMismatch when the
// program exits 1, and another error for any other failure (exit 2, 111,
// a timeout, a program that cannot start). The user's Addr comes from
// USER (an address, or a bare system user name with an empty domain) and
// its "home" attribute from HOME: a system account's mail is under its
// home directory, not in ROOT/mail.
func (p *Program) Check(ctx context.Context, username, password string) (config.User, error) {
	input := username + "\x00" + password + "\x00" + timestamp() + "\x00"
	if len(p.Argv) == 0 {
		return config.User{}, errors.New("checkpassword: no program configured")
	}
	if len(input) > MaxInput || strings.ContainsRune(username, 0) || strings.ContainsRune(password, 0) {
		return config.User{}, auth.ErrMismatch
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := p.run(ctx, input)
	if ctx.Err() != nil {
		return config.User{}, fmt.Errorf("%w: %s timed out after %v", ErrTemporary, p.Argv[0], timeout)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		switch ee.ExitCode() {
		case ExitBad:
			return config.User{}, auth.ErrMismatch
		case ExitTemp:
			return config.User{}, fmt.Errorf("%w: %s exited 111", ErrTemporary, p.Argv[0])
		}
		return config.User{}, fmt.Errorf("checkpassword: %s: %w", p.Argv[0], err)
	case err != nil:
		return config.User{}, fmt.Errorf("checkpassword: %s: %w", p.Argv[0], err)
	}
	return parseEnv(out)
}

func timestamp() string {
	return "<" + strconv.FormatInt(time.Now().Unix(), 10) + "." + strconv.Itoa(os.Getpid()) + "@mailsrv>"
}

// run starts the program with the input on descriptor 3 and returns what
// the next program printed (at most 64 KiB).
func (p *Program) run(ctx context.Context, input string) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	next := p.Next
	if len(next) == 0 {
		next = []string{"/usr/bin/env"}
	}
	argv := append(append([]string{}, p.Argv[1:]...), next...)
	cmd := exec.CommandContext(ctx, p.Argv[0], argv...)
	cmd.ExtraFiles = []*os.File{r} // descriptor 3
	cmd.Env = append(os.Environ(), EnvThrottled+"=1")
	cmd.Stderr = os.Stderr
	var out limitedBuffer
	cmd.Stdout = &out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, err
	}
	_ = r.Close()
	// The input is far below the pipe's buffer: the write cannot block.
	_, werr := io.WriteString(w, input)
	cerr := w.Close()
	err = cmd.Wait()
	if err == nil {
		err = errors.Join(werr, cerr)
	}
	return out.Bytes(), err
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// parseEnv reads USER and HOME from NAME=VALUE lines.
func parseEnv(out []byte) (config.User, error) {
	var user, home string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "USER":
			user = v
		case "HOME":
			home = v
		}
	}
	if user == "" {
		return config.User{}, errors.New("checkpassword: the program succeeded but set no USER")
	}
	u := config.User{Attrs: map[string]string{"home": home}}
	if a, err := address.Parse(user); err == nil && strings.Contains(user, "@") {
		u.Addr = a
	} else {
		u.Addr = address.Address{Local: user}
	}
	return u, nil
}
