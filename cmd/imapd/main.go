// Command imapd is the IMAP4rev1 server of mailsrv: it serves one
// connection on stdin/stdout (under tcpserver, s6-tcpserver or inetd) or
// listens itself with --listen, over the users' Maildir++ mailboxes, with
// STARTTLS or implicit TLS (--tls) from the certificates of ROOT/etc/tls.
// See mailsrv-imapd(8).
package main

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/daemon"
	"mailsrv/pkg/imap"
	"mailsrv/pkg/imap/wire"
)

// Exit codes, sysexits.h.
const (
	exitUsage = 64
	exitTemp  = 75
)

func main() {
	app := &cli.App{
		Name:      "imapd",
		Usage:     "mailsrv IMAP server",
		UsageText: "imapd [--root DIR] [--listen ADDR] [options]",
		Flags: append(daemon.MailboxFlags("speak TLS from the start (IMAPS, port 993); needs a certificate in ROOT/etc/tls"),
			&cli.DurationFlag{Name: "timeout", Value: imap.DefaultIdleTimeout, Usage: "idle time allowed to a client (RFC 3501: at least 30m)"},
			&cli.DurationFlag{Name: "poll", Value: imap.DefaultPollInterval, Usage: "how often IDLE looks for changes without inotify"},
			&cli.DurationFlag{Name: "watch-poll", Value: imap.DefaultWatchPollInterval, Usage: "how often IDLE still looks for changes with inotify (NFS)"},
			&cli.BoolFlag{Name: "no-inotify", Usage: "IDLE polls every --poll instead of watching folders with inotify"},
			&cli.Int64Flag{Name: "append-limit", Value: wire.DefaultLimits.MaxLiteral, Usage: "largest message or literal in `BYTES` (APPENDLIMIT)"},
		),
		Action: run,
	}
	daemon.Exit("imapd", app.Run(os.Args))
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("unexpected arguments: "+strings.Join(c.Args().Slice(), " "), exitUsage)
	}
	if c.Int64("append-limit") < 1024 {
		return cli.Exit("--append-limit: at least 1024 bytes", exitUsage)
	}
	log, err := daemon.Logger("imapd", c.String("log"), c.Bool("debug"))
	if err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	if c.Duration("timeout") < imap.DefaultIdleTimeout {
		log.Warn("--timeout is below the 30 minutes of RFC 3501 section 5.4")
	}
	lim := wire.DefaultLimits
	lim.MaxLiteral = c.Int64("append-limit")
	lim.MaxDiscard = 2 * lim.MaxLiteral
	mb, err := daemon.SetUpMailboxes(c, log)
	if err != nil {
		return err
	}
	srv := &imap.Server{
		Config:            mb.Config,
		Auth:              mb.Auth,
		BeforeOpen:        mb.BeforeOpen,
		TLSConfig:         mb.TLS,
		ImplicitTLS:       c.Bool("tls"),
		Log:               log,
		Limits:            lim,
		IdleTimeout:       c.Duration("timeout"),
		PollInterval:      c.Duration("poll"),
		WatchPollInterval: c.Duration("watch-poll"),
		NoWatch:           c.Bool("no-inotify"),
		AllowInsecureAuth: c.Bool("allow-insecure-auth"),
	}
	if err := daemon.Serve(c.String("listen"), c.String("user"), srv.Serve); err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	return nil
}
