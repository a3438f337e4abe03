// Command smtpd is the SMTP server of mailsrv: it serves one connection on
// stdin/stdout (under tcpserver, s6-tcpserver or inetd) or listens itself
// with --listen, and hands each accepted message to the queue. See
// mailsrv-smtpd(8).
package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/authhelper"
	"mailsrv/pkg/config"
	"mailsrv/pkg/daemon"
	"mailsrv/pkg/privsep"
	"mailsrv/pkg/progs"
	"mailsrv/pkg/queue"
	"mailsrv/pkg/smtpd"
	"mailsrv/pkg/throttle"
	"mailsrv/pkg/ucspi"
)

// Exit codes, sysexits.h.
const (
	exitUsage = 64
	exitTemp  = 75
)

// envQueue names a filter program to run per message instead of the queue
// (as qmail's QMAILQUEUE).
const envQueue = "MAILSRV_QUEUE"

func main() {
	app := &cli.App{
		Name:      "smtpd",
		Usage:     "mailsrv SMTP server",
		UsageText: "smtpd [--root DIR] [--listen ADDR] [options]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: config.DefaultRoot, EnvVars: []string{config.EnvRoot}, Usage: "mailsrv root `DIR`"},
			&cli.StringFlag{Name: "listen", Usage: "listen on `ADDR` (host:port) instead of serving stdin/stdout"},
			&cli.StringFlag{Name: "hostname", Usage: "`NAME` in the greeting and Received headers (default: etc/me)"},
			&cli.Int64Flag{Name: "max-size", Value: smtpd.DefaultMaxSize, Usage: "largest message in `OCTETS`"},
			&cli.IntFlag{Name: "max-recipients", Value: smtpd.DefaultMaxRecipients, Usage: "at most `N` recipients per message"},
			&cli.IntFlag{Name: "max-line", Value: smtpd.DefaultMaxLine, Usage: "longest line in `OCTETS`, CRLF included"},
			&cli.IntFlag{Name: "max-hops", Value: smtpd.DefaultMaxHops, Usage: "at most `N` Received headers (more: a mail loop)"},
			&cli.IntFlag{Name: "max-bad-rcpts", Value: smtpd.DefaultMaxBadRcpts, Usage: "close a connection after `N` refused recipients"},
			&cli.IntFlag{Name: "max-conns", Value: smtpd.DefaultMaxConns, Usage: "with --listen, at most `N` connections at once"},
			&cli.DurationFlag{Name: "timeout", Value: smtpd.DefaultTimeout, Usage: "idle `TIME` allowed to a client (5m, 30s)"},
			&cli.StringFlag{Name: "queue", Usage: "`PATH` of the queue program (default: $MAILSRV_LIBEXEC/queue, else beside smtpd, else on PATH)"},
			&cli.StringFlag{Name: "inject", Value: "auto", Usage: "how messages reach the queue: `MODE` direct (written by smtpd), process (queue inject --lmtp children), or auto (direct when smtpd may write the queue)"},
			&cli.IntFlag{Name: "injectors", Value: 4, Usage: "at most `N` queue inject --lmtp processes at once"},
			&cli.StringFlag{Name: "log", Usage: "append logs to `FILE` instead of stderr (for inetd)"},
			&cli.BoolFlag{Name: "tls", Usage: "implicit TLS (port 465): a TLS handshake before the greeting; needs a certificate in ROOT/etc/tls"},
			&cli.BoolFlag{Name: "submission", Usage: "message submission (587, 465): AUTH before MAIL, senders must belong to the user"},
			&cli.BoolFlag{Name: "allow-insecure-auth", Usage: "allow PLAIN and LOGIN on unencrypted connections from anywhere"},
			&cli.BoolFlag{Name: "received-ip", Usage: "with --submission, name the client's HELO and IP address in the Received header"},
			&cli.StringFlag{Name: "user", Usage: "started as root, run as `ACCOUNT` (mailsrv-smtpd) once the port is bound"},
			&cli.StringFlag{Name: "checkpassword", Usage: "check AUTH passwords with the checkpassword `PROGRAM` instead of etc/users"},
			&cli.StringFlag{Name: "auth-user", Usage: "look users up and check passwords through `mailctl auth-helper` run as `ACCOUNT` (mailsrv-mail), for an smtpd that may not read etc/users"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	// cli.Exit errors (from fail) end the process inside Run, with their
	// code; what comes back here is a usage error.
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "smtpd:", err)
		os.Exit(exitUsage)
	}
}

// fail ends the program with a sysexits code.
func fail(code int, msg string) error {
	return cli.Exit("smtpd: "+msg, code)
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return fail(exitUsage, fmt.Sprintf("unexpected arguments: %q", c.Args().Slice()))
	}
	log, err := daemon.Logger("smtpd", c.String("log"), false)
	if err != nil {
		return fail(exitTemp, err.Error())
	}

	switch c.String("inject") {
	case "auto", "direct", "process":
	default:
		return fail(exitUsage, "--inject: want auto, direct or process")
	}
	root := c.String("root")
	// Children (the queue, a filter) find the root the same way.
	if err := os.Setenv(config.EnvRoot, root); err != nil {
		return fail(exitTemp, err.Error())
	}
	cfg := config.Open(root)
	tlsConfig, err := daemon.TLS(cfg, c.String("hostname"), c.Bool("tls"), log)
	if err != nil {
		return fail(exitTemp, err.Error())
	}
	th, err := throttle.Open(root)
	if err != nil {
		return fail(exitTemp, err.Error())
	}
	authn := &auth.Authenticator{Config: cfg, Throttle: th, Logger: log}
	// No mailbox to open: the hook for imapd and pop3d is not needed.
	if _, err := daemon.Checkpassword(authn, c.String("checkpassword"), "", ""); err != nil {
		return fail(exitUsage, err.Error())
	}
	if a := c.String("auth-user"); a != "" {
		// With --listen, password checks (an argon2id each) get a helper
		// of their own, so that a burst of AUTH attempts does not hold up
		// the RCPT look-ups of every other session.
		n := 1
		if c.String("listen") != "" {
			n = 2
		}
		for i := range n {
			helper, err := startHelper(root, a)
			if err != nil {
				return fail(exitTemp, err.Error())
			}
			defer helper.Close()
			defer daemon.StopWhen(helper.Done(), "auth helper", log)()
			if i == 0 {
				cfg.Lookup = helper.Lookup
			}
			if authn.Backend == nil && i == n-1 {
				authn.Backend = helper
			}
		}
	}
	var ln net.Listener
	if addr := c.String("listen"); addr != "" {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fail(exitTemp, err.Error())
		}
	}
	// Nothing has been read from the network yet.
	if err := privsep.DropTo(c.String("user")); err != nil {
		return fail(exitTemp, err.Error())
	}
	inj, closeInj := injector(c, root)
	defer closeInj()
	srv, err := smtpd.New(smtpd.Options{
		Config:            cfg,
		Injector:          inj,
		Hostname:          c.String("hostname"),
		MaxSize:           c.Int64("max-size"),
		MaxRecipients:     c.Int("max-recipients"),
		MaxLine:           c.Int("max-line"),
		MaxHops:           c.Int("max-hops"),
		MaxConns:          c.Int("max-conns"),
		MaxBadRcpts:       c.Int("max-bad-rcpts"),
		Timeout:           c.Duration("timeout"),
		Log:               log,
		TLS:               tlsConfig,
		ImplicitTLS:       c.Bool("tls"),
		Auth:              authn,
		AllowInsecureAuth: c.Bool("allow-insecure-auth"),
		Submission:        c.Bool("submission"),
		ReceivedIP:        c.Bool("received-ip"),
	})
	if err != nil {
		return fail(exitTemp, err.Error())
	}
	if ln != nil {
		return listen(srv, ln, log)
	}
	// The client's socket is fd 1: a write after it has gone (TLS's
	// close_notify) must fail as an error, not kill us with SIGPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if err := srv.ServeConn(ucspi.Stdio()); err != nil {
		return fail(exitTemp, err.Error())
	}
	return nil
}

// injector picks where messages go: the filter named by MAILSRV_QUEUE, run
// once per message, or a pool of `queue inject --lmtp` processes.
func injector(c *cli.Context, root string) (queue.Injector, func()) {
	if filter := os.Getenv(envQueue); filter != "" {
		return queue.ExecInjector{Argv: []string{filter}}, func() {}
	}
	mode := c.String("inject")
	if mode != "process" {
		q, err := queue.Open(config.Open(root).QueueDir())
		if err == nil && (mode == "direct" || q.Writable()) {
			return q, func() {}
		}
	}
	prog := c.String("queue")
	if prog == "" {
		prog = progs.Path("queue")
	}
	p := queue.NewProcessInjector([]string{prog, "--root", root, "inject", "--lmtp"}, c.Int("injectors"))
	return p, p.Close
}

// startHelper starts `mailctl auth-helper` as account.
func startHelper(root, account string) (*authhelper.Client, error) {
	a, err := privsep.Lookup(account)
	if err != nil {
		return nil, err
	}
	return authhelper.Start([]string{progs.Path("mailctl"), "--root", root, "auth-helper"}, a)
}

// listen serves ln until SIGTERM or SIGINT.
func listen(srv *smtpd.Server, ln net.Listener, log *slog.Logger) error {
	log.Info("listening", "addr", ln.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sig
		log.Info("stopping", "signal", s.String())
		if err := srv.Close(); err != nil {
			log.Warn("closing", "err", err)
		}
	}()
	if err := srv.Serve(ln); err != nil {
		return fail(exitTemp, err.Error())
	}
	return nil
}
