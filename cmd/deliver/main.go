// Command deliver is mailsrv's mail delivery agent: one message on stdin
// into a Maildir (-d ADDRESS or -m MAILDIR), or LMTP on stdin/stdout for
// `queue run` (--lmtp). See mailsrv-deliver(8).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
	"mailsrv/pkg/deliver"
	"mailsrv/pkg/progs"
	"mailsrv/pkg/queue"
	"mailsrv/pkg/ucspi"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("prog", "deliver"))
	app := &cli.App{
		Name:      "deliver",
		Usage:     "deliver one message into a Maildir",
		UsageText: "deliver [--root DIR] -d ADDRESS [-f SENDER] < message\n   deliver -m MAILDIR [-a ADDRESS] [-f SENDER] < message\n   deliver [--root DIR] --lmtp",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: config.DefaultRoot, EnvVars: []string{config.EnvRoot}, Usage: "mailsrv root directory"},
			&cli.StringFlag{Name: "d", Usage: "deliver to this address, following its aliases"},
			&cli.StringFlag{Name: "m", Usage: "deliver into this Maildir, without any lookup"},
			&cli.StringFlag{Name: "a", Usage: "with -m: the address for the Delivered-To header and loop check"},
			&cli.StringFlag{Name: "f", EnvVars: []string{"SENDER"}, Usage: "envelope sender, for Return-Path"},
			&cli.BoolFlag{Name: "lmtp", Usage: "serve LMTP on stdin/stdout (the worker mode of queue run)"},
			&cli.Int64Flag{Name: "max-size", Value: deliver.DefaultMaxSize, Usage: "refuse messages larger than this many bytes"},
			&cli.BoolFlag{Name: "quota-tempfail", EnvVars: []string{deliver.EnvQuotaTempFail}, Usage: "a full mailbox is a temporary failure (452 4.2.2, exit 75), not a permanent one (552 5.2.2, exit 73)"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "deliver:", err)
		os.Exit(deliver.ExitUsage)
	}
}

func run(c *cli.Context) error {
	cfg := config.Open(c.String("root"))
	d := &deliver.Deliverer{Cfg: cfg, QuotaTempFail: c.Bool("quota-tempfail"),
		Forward: queue.ExecInjector{Argv: []string{progs.Path("queue"), "--root", cfg.Root, "inject", "--proto", "forward"}}}
	if q := os.Getenv("MAILSRV_QUEUE"); q != "" {
		d.Forward = queue.ExecInjector{Argv: []string{q}}
	}
	switch {
	case c.Bool("lmtp"):
		if err := d.ServeLMTP(ucspi.Stdio(), c.Int64("max-size")); err != nil {
			return cli.Exit("deliver: "+err.Error(), deliver.ExitTempFail)
		}
		return nil
	case c.String("d") != "" && c.String("m") == "":
		a, err := address.Parse(c.String("d"))
		if err != nil {
			return cli.Exit(fmt.Sprintf("deliver: -d %q: %v", c.String("d"), err), deliver.ExitUsage)
		}
		msg, err := deliver.ReadMessage(os.Stdin, c.Int64("max-size"))
		if err == nil {
			err = d.ToAddress(context.Background(), a, c.String("f"), msg)
		}
		return exit(err, "rcpt", a.String())
	case c.String("m") != "" && c.String("d") == "":
		msg, err := deliver.ReadMessage(os.Stdin, c.Int64("max-size"))
		if err == nil {
			_, err = deliver.ToMaildir(c.String("m"), c.String("f"), c.String("a"), msg)
		}
		return exit(err, "maildir", c.String("m"))
	}
	return cli.Exit("deliver: give exactly one of -d ADDRESS, -m MAILDIR or --lmtp", deliver.ExitUsage)
}

// exit logs the outcome and turns it into the sysexits code.
func exit(err error, key, val string) error {
	if err == nil {
		slog.Info("delivered", key, val)
		return nil
	}
	de := deliver.ErrorOf(err)
	slog.Warn("delivery failed", key, val, "status", de.Status, "err", de.Msg)
	return cli.Exit("deliver: "+de.Msg, de.Exit)
}
