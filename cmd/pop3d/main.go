// Command pop3d is the POP3 server of mailsrv: it serves one connection on
// stdin/stdout (under tcpserver, s6-tcpserver or inetd) or listens itself
// with --listen, over the same Maildir INBOX that imapd serves. See
// mailsrv-pop3d(8).
package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/daemon"
	"mailsrv/pkg/pop3"
)

// Exit codes, sysexits.h.
const (
	exitUsage = 64
	exitTemp  = 75
)

func main() {
	app := &cli.App{
		Name:      "pop3d",
		Usage:     "mailsrv POP3 server",
		UsageText: "pop3d [--root DIR] [--listen ADDR] [options]",
		Flags: append(daemon.MailboxFlags("speak TLS from the start (POP3S, port 995); needs a certificate in ROOT/etc/tls"),
			&cli.DurationFlag{Name: "timeout", Value: pop3.DefaultIdleTimeout, Usage: "idle time allowed to a client (RFC 1939: at least 10m)"},
			&cli.StringFlag{Name: "expire", Value: "NEVER", Usage: "EXPIRE capability to advertise: `DAYS`, NEVER, or \"\" for none"},
			&cli.DurationFlag{Name: "login-delay", Usage: "least time between two logins to one mailbox (LOGIN-DELAY); 0 for none"},
			&cli.IntFlag{Name: "max-connections", Value: pop3.DefaultMaxConnections, Usage: "most sessions served at once with --listen"},
		),
		Action: run,
	}
	daemon.Exit("pop3d", app.Run(os.Args))
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("unexpected arguments: "+strings.Join(c.Args().Slice(), " "), exitUsage)
	}
	expire := strings.ToUpper(c.String("expire"))
	if _, err := strconv.ParseUint(expire, 10, 16); err != nil && expire != "NEVER" && expire != "" {
		return cli.Exit("--expire: want a number of days or NEVER", exitUsage)
	}
	log, err := daemon.Logger("pop3d", c.String("log"), c.Bool("debug"))
	if err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	if c.Duration("timeout") < pop3.DefaultIdleTimeout {
		log.Warn("--timeout is below the 10 minutes of RFC 1939 section 3")
	}

	mb, err := daemon.SetUpMailboxes(c, log)
	if err != nil {
		return err
	}
	srv := &pop3.Server{
		Config:            mb.Config,
		Auth:              mb.Auth,
		BeforeOpen:        mb.BeforeOpen,
		TLSConfig:         mb.TLS,
		ImplicitTLS:       c.Bool("tls"),
		Log:               log,
		IdleTimeout:       c.Duration("timeout"),
		AllowInsecureAuth: c.Bool("allow-insecure-auth"),
		Expire:            expire,
		LoginDelay:        c.Duration("login-delay"),
		MaxConnections:    c.Int("max-connections"),
	}
	if err := daemon.Serve(c.String("listen"), c.String("user"), srv.Serve); err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	return nil
}
