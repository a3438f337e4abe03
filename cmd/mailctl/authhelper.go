package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/admin"
	"mailsrv/pkg/authhelper"
	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
)

func authHelperCommand() *cli.Command {
	return &cli.Command{
		Name:      "auth-helper",
		Usage:     "answer user look-ups and password checks on stdin/stdout for a daemon that may not read etc/users (smtpd --auth-user), or with --listen as the auth service of imapd and pop3d",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "serve many connections on the Unix socket `PATH` (ROOT/" + authhelper.SocketName + " for imapd and pop3d) instead of stdin/stdout"},
			&cli.StringFlag{Name: "user", Usage: "with --listen, started as root: own the socket and run as `ACCOUNT` (mailsrv-mail)"},
			&cli.BoolFlag{Name: "debug", Usage: "log every check (user and result, never the password)"},
		},
		Action: func(c *cli.Context) error {
			if err := nargs(c, 0, 0); err != nil {
				return err
			}
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("prog", "auth-helper")
			cfg := config.Open(c.String("root"))
			if c.String("listen") != "" {
				return listenAuth(c, cfg, log)
			}
			if c.String("user") != "" {
				return admin.Usagef("auth-helper: --user needs --listen")
			}
			if err := authhelper.Serve(os.Stdin, os.Stdout, cfg, log); err != nil {
				log.Error("auth helper stopped", "err", err)
				return cli.Exit("", 75)
			}
			return nil
		},
	}
}

// listenAuth runs the auth service until SIGTERM or SIGINT.
func listenAuth(c *cli.Context, cfg *config.Config, log *slog.Logger) error {
	var owner *privsep.Account
	if name := c.String("user"); name != "" {
		a, err := privsep.Lookup(name)
		if err != nil {
			log.Error("auth service", "err", err)
			return cli.Exit("", 67)
		}
		owner = &a
	}
	limit := authhelper.KeepArgonMemory()
	if err := os.MkdirAll(filepath.Dir(c.String("listen")), 0o755); err != nil {
		log.Error("auth service not started", "err", err)
		return cli.Exit("", 73)
	}
	ln, err := authhelper.Listen(c.String("listen"), owner)
	if err != nil {
		log.Error("auth service not started", "err", err)
		return cli.Exit("", 75)
	}
	if owner != nil {
		if err := privsep.Drop(*owner); err != nil {
			log.Error("auth service not started", "err", err)
			return cli.Exit("", 75)
		}
	}
	authhelper.WarmUp(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("auth service listening", "socket", c.String("listen"), "uid", os.Getuid(), "memory_limit", limit)
	srv := &authhelper.SocketServer{Config: cfg, Log: log}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("auth service stopped", "err", err)
		return cli.Exit("", 75)
	}
	log.Info("auth service stopped")
	return nil
}
