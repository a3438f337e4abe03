package checkpassword

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
)

// execve replaces the process; tests replace it.
var execve = syscall.Exec

// Serve is `mailctl checkpassword PROG...`: it reads user NUL password NUL
// timestamp NUL from fd3, checks them against etc/users (hashes in any
// scheme auth.VerifyAny reads, upgraded on success), and on success runs
// argv in place of the current process with USER set to the address and
// HOME to the mailbox, in HOME. It returns only on failure, with the exit
// code: ExitBad for a wrong user or password, ExitMisuse for bad input or
// no argv, ExitTemp for a fault of the server or a lockout.
//
// Failed logins are throttled (ROOT/run/throttle) by account, and by
// TCPREMOTEIP when set, unless MAILSRV_THROTTLED says the caller did it.
func Serve(cfg *config.Config, fd3 io.Reader, argv []string) int {
	if len(argv) == 0 {
		slog.Error("checkpassword: no program to run after the check")
		return ExitMisuse
	}
	user, pass, err := readInput(fd3)
	if err != nil {
		slog.Error("checkpassword", "err", err)
		return ExitMisuse
	}
	a := &auth.Authenticator{Config: cfg}
	if os.Getenv(EnvThrottled) == "" {
		th, err := throttle.Open(cfg.Root)
		if err != nil {
			slog.Error("checkpassword", "err", err)
			return ExitTemp
		}
		a.Throttle = th
	}
	req := auth.Request{Username: user, Password: pass, Mech: "checkpassword", Service: "checkpassword"}
	if ip, err := netip.ParseAddr(os.Getenv("TCPREMOTEIP")); err == nil {
		req.RemoteIP = ip
	}
	u, err := a.Authenticate(req)
	switch {
	case errors.Is(err, auth.ErrMismatch):
		return ExitBad
	case err != nil:
		return ExitTemp
	}
	home := cfg.Mailbox(u)
	if err := run(argv, u.Addr.Key(), home); err != nil {
		slog.Error("checkpassword", "user", u.Addr.Key(), "err", err)
		return ExitTemp
	}
	return ExitOK // reached only with a test's execve
}

// readInput reads the whole input, at most MaxInput bytes: user NUL
// password NUL timestamp NUL (the last NUL may be missing).
func readInput(r io.Reader) (user, pass string, err error) {
	buf, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return "", "", fmt.Errorf("read descriptor 3: %w", err)
	}
	if len(buf) > MaxInput {
		return "", "", fmt.Errorf("input on descriptor 3 longer than %d bytes", MaxInput)
	}
	parts := bytes.SplitN(buf, []byte{0}, 3)
	if len(parts) < 3 || len(parts[0]) == 0 {
		return "", "", errors.New("input on descriptor 3: want user NUL password NUL timestamp NUL")
	}
	return string(parts[0]), string(parts[1]), nil
}

// run executes argv as the interface asks: USER and HOME set, in HOME.
func run(argv []string, user, home string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	if err := os.Chdir(home); err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "USER=") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, EnvThrottled+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, "USER="+user, "HOME="+home)
	return execve(path, argv, env)
}
