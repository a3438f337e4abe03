// Command imapd is the IMAP4rev1 server of mailsrv: it serves one
// connection on stdin/stdout (under tcpserver, s6-tcpserver or inetd) or
// listens itself with --listen, over the users' Maildir++ mailboxes, with
// STARTTLS or implicit TLS (--tls) from the certificates of ROOT/etc/tls.
// See mailsrv-imapd(8).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/imap"
	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/throttle"
	"mailsrv/pkg/tlsconf"
	"mailsrv/pkg/ucspi"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: config.DefaultRoot, EnvVars: []string{config.EnvRoot}, Usage: "mailsrv root `DIR`"},
			&cli.StringFlag{Name: "listen", Usage: "listen on `ADDR` (host:port) instead of serving stdin/stdout"},
			&cli.DurationFlag{Name: "timeout", Value: imap.DefaultIdleTimeout, Usage: "idle time allowed to a client (RFC 3501: at least 30m)"},
			&cli.DurationFlag{Name: "poll", Value: imap.DefaultPollInterval, Usage: "how often IDLE looks for changes"},
			&cli.Int64Flag{Name: "append-limit", Value: wire.DefaultLimits.MaxLiteral, Usage: "largest message or literal in `BYTES` (APPENDLIMIT)"},
			&cli.BoolFlag{Name: "tls", Usage: "speak TLS from the start (IMAPS, port 993); needs a certificate in ROOT/etc/tls"},
			&cli.BoolFlag{Name: "allow-insecure-auth", Usage: "accept passwords on unencrypted connections from non-loopback addresses"},
			&cli.StringFlag{Name: "log", Usage: "append logs to `FILE` instead of stderr (for inetd)"},
			&cli.BoolFlag{Name: "debug", Usage: "log every connection, not only logins"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := ec.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "imapd:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "imapd:", err)
		os.Exit(exitUsage)
	}
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("unexpected arguments: "+strings.Join(c.Args().Slice(), " "), exitUsage)
	}
	if c.Int64("append-limit") < 1024 {
		return cli.Exit("--append-limit: at least 1024 bytes", exitUsage)
	}
	logw, err := logWriter(c.String("log"))
	if err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	level := slog.LevelInfo
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level})).With("prog", "imapd")
	slog.SetDefault(log)
	if c.Duration("timeout") < imap.DefaultIdleTimeout {
		log.Warn("--timeout is below the 30 minutes of RFC 3501 section 5.4")
	}
	lim := wire.DefaultLimits
	lim.MaxLiteral = c.Int64("append-limit")
	lim.MaxDiscard = 2 * lim.MaxLiteral
	cfg := config.Open(c.String("root"))
	tlsConfig, err := loadTLS(cfg, c.Bool("tls"), log)
	if err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	th, err := throttle.Open(cfg.Root)
	if err != nil {
		return cli.Exit(err.Error(), exitTemp)
	}
	srv := &imap.Server{
		Config:            cfg,
		Auth:              &auth.Authenticator{Config: cfg, Throttle: th, Logger: log},
		TLSConfig:         tlsConfig,
		ImplicitTLS:       c.Bool("tls"),
		Log:               log,
		Limits:            lim,
		IdleTimeout:       c.Duration("timeout"),
		PollInterval:      c.Duration("poll"),
		AllowInsecureAuth: c.Bool("allow-insecure-auth"),
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if addr := c.String("listen"); addr != "" {
		if err := ucspi.Listen(ctx, addr, srv.Serve); err != nil {
			return cli.Exit(err.Error(), exitTemp)
		}
		return nil
	}
	srv.Serve(ctx, ucspi.Stdio())
	return nil
}

// loadTLS loads the certificates of ROOT/etc/tls (tlsconf.ForDaemon):
// nil without one (STARTTLS is then not offered), an error without one
// under --tls.
func loadTLS(cfg *config.Config, implicit bool, log *slog.Logger) (*tls.Config, error) {
	host, err := cfg.Hostname()
	if err != nil {
		return nil, err
	}
	tc, err := tlsconf.ForDaemon(cfg.Root, host, implicit)
	if err == nil && tc == nil {
		log.Debug("no TLS certificate: STARTTLS not offered")
	}
	return tc, err
}

func logWriter(path string) (io.Writer, error) {
	if path == "" {
		return os.Stderr, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0640)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}
