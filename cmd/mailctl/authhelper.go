package main

import (
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/authhelper"
	"mailsrv/pkg/config"
)

func authHelperCommand() *cli.Command {
	return &cli.Command{
		Name:      "auth-helper",
		Usage:     "answer user look-ups and password checks on stdin/stdout for a daemon that may not read etc/users (smtpd --auth-user)",
		ArgsUsage: " ",
		Action: func(c *cli.Context) error {
			if err := nargs(c, 0, 0); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("prog", "auth-helper")
			if err := authhelper.Serve(os.Stdin, os.Stdout, config.Open(c.String("root")), log); err != nil {
				log.Error("auth helper stopped", "err", err)
				return cli.Exit("", 75)
			}
			return nil
		},
	}
}
