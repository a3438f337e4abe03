// Package daemon is the start-up plumbing that smtpd, imapd and pop3d
// share: where the log goes (stderr for tcpserver, s6 and systemd; a file
// under inetd, where stderr is the client's socket), whether TLS is on
// offer, and serving either one connection on stdin/stdout or a listener
// until SIGTERM or SIGINT.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/authhelper"
	"mailsrv/pkg/checkpassword"
	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
	"mailsrv/pkg/throttle"
	"mailsrv/pkg/tlsconf"
	"mailsrv/pkg/ucspi"

	"github.com/urfave/cli/v2"
)

// Logger returns the program's logger, key=value lines on stderr, or
// appended to path when it is set, and makes it the default.
func Logger(prog, path string, debug bool) (*slog.Logger, error) {
	var w io.Writer = os.Stderr
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		w = f
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("prog", prog)
	slog.SetDefault(log)
	return log, nil
}

// TLS loads the certificates of ROOT/etc/tls (tlsconf.ForDaemon): nil
// without one, so the upgrade (STARTTLS, STLS) is not offered, and an error
// without one when implicit (--tls) is set. hostname picks the default
// certificate; "" means etc/me.
func TLS(cfg *config.Config, hostname string, implicit bool, log *slog.Logger) (*tls.Config, error) {
	if hostname == "" {
		h, err := cfg.Hostname()
		if err != nil {
			return nil, err
		}
		hostname = h
	}
	tc, err := tlsconf.ForDaemon(cfg.Root, hostname, implicit)
	if err == nil && tc == nil {
		log.Info("no TLS certificate in etc/tls: the TLS upgrade is not offered")
	}
	return tc, err
}

// Serve runs h on a listener at addr, or, when addr is "", on the one
// connection of stdin/stdout, until SIGTERM or SIGINT (then the listener
// waits for the sessions in progress). With user set, the process drops
// to that account (privsep.DropTo) once the port is bound and before a
// byte is read from the network.
func Serve(addr, user string, h ucspi.Handler) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if addr == "" {
		if err := privsep.DropTo(user); err != nil {
			return err
		}
		auth.ReturnMemory = true // one login at most: its 64 MiB are garbage after it
		h(ctx, ucspi.Stdio())
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if err := privsep.DropTo(user); err != nil {
		_ = ln.Close()
		return err
	}
	return ucspi.Serve(ctx, ln, h)
}

// Exit ends the program after app.Run: with the code of a cli.Exit error
// (its message, if any, on stderr), with 64 (EX_USAGE) for the usage errors
// urfave/cli returns itself, and 0 without an error.
func Exit(prog string, err error) {
	if err == nil {
		os.Exit(0)
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, prog+":", msg)
		}
		os.Exit(ec.ExitCode())
	}
	fmt.Fprintln(os.Stderr, prog+":", err)
	os.Exit(exitUsage)
}

// Checkpassword makes a's logins go through the external checkpassword
// program prog (words split at spaces; "" leaves a as it is) and returns
// the hook imapd and pop3d run between a login and opening the mailbox:
// serving one connection as root, they drop to the mailbox's owner there,
// as qmail-pop3d does after checkpassword. A --listen process serves many
// users at once and so cannot: as root without --user it is refused.
func Checkpassword(a *auth.Authenticator, prog, listen, user string) (func(config.User, string) error, error) {
	if prog == "" {
		return nil, nil
	}
	a.Backend = &checkpassword.Program{Argv: strings.Fields(prog)}
	switch {
	case user != "":
		return nil, nil
	case listen != "" && os.Geteuid() == 0:
		return nil, errors.New("--checkpassword with --listen as root would serve every user as root: " +
			"run one process per connection (tcpserver, inetd) or give --user")
	}
	return func(_ config.User, box string) error { return privsep.DropToOwner(box) }, nil
}

// StopWhen stops this program, as SIGTERM would (finishing what is in
// progress), when done is closed: a helper it started while it was root
// (mailctl auth-helper, queue spawn) has ended and cannot be started again
// now that it runs under its own account, so it leaves it to its
// supervisor (s6, runit, systemd) to start it afresh. The function
// returned disarms it, for the program's own shutdown.
func StopWhen(done <-chan struct{}, what string, log *slog.Logger) (disarm func()) {
	quit := make(chan struct{})
	go func() {
		select {
		case <-done:
			log.Error(what+" ended: stopping, for the supervisor to start this program again", "helper", what)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		case <-quit:
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }) }
}

// Exit codes of sysexits.h.
const (
	exitUsage    = 64
	exitTempFail = 75
)

// Mailboxes is what imapd and pop3d set up alike from their flags (--root,
// --tls, --checkpassword, --auth-socket, --listen, --user): the root's
// control files, TLS, and logins, throttled, through the checkpassword
// program when one is named, else through the auth service (AuthSocket).
type Mailboxes struct {
	Config     *config.Config
	TLS        *tls.Config
	Auth       *auth.Authenticator
	BeforeOpen func(config.User, string) error // see Checkpassword
}

// MailboxFlags declares the flags SetUpMailboxes reads, and --log and
// --debug, for imapd and pop3d; tlsUsage describes --tls (its port).
func MailboxFlags(tlsUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Value: config.DefaultRoot, EnvVars: []string{config.EnvRoot}, Usage: "mailsrv root `DIR`"},
		&cli.StringFlag{Name: "listen", Usage: "listen on `ADDR` (host:port) instead of serving stdin/stdout"},
		&cli.BoolFlag{Name: "tls", Usage: tlsUsage},
		&cli.BoolFlag{Name: "allow-insecure-auth", Usage: "accept passwords on unencrypted connections from non-loopback addresses"},
		&cli.StringFlag{Name: "log", Usage: "append logs to `FILE` instead of stderr (for inetd)"},
		&cli.StringFlag{Name: "user", Usage: "started as root, run as `ACCOUNT` (mailsrv-mail) once the port is bound"},
		&cli.StringFlag{Name: "checkpassword", Usage: "check passwords with the checkpassword `PROGRAM` (system accounts: mail in HOME/Maildir; as root, the session becomes the mailbox's owner after login)"},
		&cli.StringFlag{Name: "auth-socket", Usage: "check passwords through the auth service (mailctl auth-helper --listen) on the Unix socket `PATH`; default ROOT/" + authhelper.SocketName + ", \"\" checks them in this process; without the service they are checked here"},
		&cli.BoolFlag{Name: "debug", Usage: "log every connection, not only logins"},
	}
}

// SetUpMailboxes reads those flags; its errors are cli.Exit errors with
// their sysexits code.
func SetUpMailboxes(c *cli.Context, log *slog.Logger) (Mailboxes, error) {
	cfg := config.Open(c.String("root"))
	tc, err := TLS(cfg, "", c.Bool("tls"), log)
	if err != nil {
		return Mailboxes{}, cli.Exit(err.Error(), exitTempFail)
	}
	th, err := throttle.Open(cfg.Root)
	if err != nil {
		return Mailboxes{}, cli.Exit(err.Error(), exitTempFail)
	}
	authn := &auth.Authenticator{Config: cfg, Throttle: th, Logger: log}
	beforeOpen, err := Checkpassword(authn, c.String("checkpassword"), c.String("listen"), c.String("user"))
	if err != nil {
		return Mailboxes{}, cli.Exit(err.Error(), exitUsage)
	}
	if authn.Backend == nil {
		authn.Backend = AuthSocket(cfg, c, log)
	}
	return Mailboxes{Config: cfg, TLS: tc, Auth: authn, BeforeOpen: beforeOpen}, nil
}

// AuthSocket returns the Backend of --auth-socket: passwords checked by
// the auth service on its socket (ROOT/run/auth.sock unless the flag
// names another), where argon2's memory stays warm between logins, and in
// this process when the service is not there; nil (this process, always)
// when the flag is the empty string.
func AuthSocket(cfg *config.Config, c *cli.Context, log *slog.Logger) auth.Backend {
	path := filepath.Join(cfg.Root, authhelper.SocketName)
	if c.IsSet("auth-socket") {
		path = c.String("auth-socket")
	}
	if path == "" {
		return nil
	}
	return &authhelper.SocketBackend{Path: path, Local: auth.UsersBackend{Config: cfg, Logger: log}, Log: log}
}
