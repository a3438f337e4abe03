// Command queue is mailsrv's mail queue: inject (one message in), run (the
// scheduler), list and flush. See mailsrv-queue(8) and mailsrv-queue(5).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/address"
	"mailsrv/pkg/authhelper"
	"mailsrv/pkg/config"
	"mailsrv/pkg/daemon"
	"mailsrv/pkg/deliver"
	"mailsrv/pkg/lmtp"
	"mailsrv/pkg/privsep"
	"mailsrv/pkg/progs"
	"mailsrv/pkg/queue"
	"mailsrv/pkg/ucspi"
)

// Exit codes (sysexits.h).
const (
	exitUsage   = 64
	exitData    = 65
	exitNoInput = 66
	exitTemp    = 75
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("prog", "queue"))
	app := &cli.App{
		Name:  "queue",
		Usage: "the mailsrv mail queue",
		Flags: []cli.Flag{&cli.StringFlag{Name: "root", Value: config.DefaultRoot,
			EnvVars: []string{config.EnvRoot}, Usage: "mailsrv root directory"}},
		Commands: []*cli.Command{injectCmd, runCmd, listCmd, flushCmd, deleteCmd, spawnCmd},
		ExitErrHandler: func(c *cli.Context, err error) {
			if err != nil {
				cli.HandleExitCoder(err)
				fmt.Fprintln(os.Stderr, "queue:", err)
				os.Exit(exitUsage)
			}
		},
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(exitUsage)
	}
}

func openQueue(c *cli.Context) (*queue.Queue, error) {
	q, err := queue.Open(config.Open(c.String("root")).QueueDir())
	if err != nil {
		return nil, cli.Exit(err.Error(), exitTemp)
	}
	return q, nil
}

var injectCmd = &cli.Command{
	Name:      "inject",
	Usage:     "queue one message from stdin, or serve LMTP on stdin/stdout with --lmtp",
	ArgsUsage: "[RECIPIENT...]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "f", Usage: "envelope sender (empty for <>)"},
		&cli.BoolFlag{Name: "lmtp", Usage: "serve LMTP on stdin/stdout, one queue file per message"},
		&cli.Int64Flag{Name: "max-size", Value: 0, Usage: "refuse messages larger than this many bytes (0: no limit)"},
		&cli.IntFlag{Name: "envelope-fd", Value: 1, Usage: "without RECIPIENT arguments, read a qmail-queue envelope (Fsender\\0Trcpt\\0...\\0) from this descriptor"},
		&cli.StringFlag{Name: "proto", Value: "local", Usage: "how the message arrived, for the envelope"},
	},
	Action: func(c *cli.Context) error {
		// Installed set-group-ID mailsrv-queue (mailctl init --system),
		// inject runs with its caller's umask: the queue file must stay
		// readable by the group whatever that is.
		syscall.Umask(0o027)
		q, err := openQueue(c)
		if err != nil {
			return err
		}
		if c.Bool("lmtp") {
			return q.ServeLMTPFrom(ucspi.Stdio(), c.Int64("max-size"), c.String("proto"), privsep.TrustedCaller(privsep.SMTPDUser))
		}
		env, err := envelopeFromArgs(c)
		if err != nil {
			return cli.Exit("queue inject: "+err.Error(), exitUsage)
		}
		id, err := q.InjectLimit(env, os.Stdin, c.Int64("max-size"))
		if err != nil {
			code := exitData
			if queue.IsTemporary(err) {
				code = exitTemp
			}
			return cli.Exit("queue inject: "+err.Error(), code)
		}
		if c.NArg() > 0 {
			fmt.Println(id)
		}
		return nil
	},
}

func envelopeFromArgs(c *cli.Context) (*queue.Envelope, error) {
	env := &queue.Envelope{Proto: c.String("proto")}
	if c.NArg() == 0 {
		f := os.NewFile(uintptr(c.Int("envelope-fd")), "envelope")
		if f == nil {
			return nil, errors.New("no recipients")
		}
		defer f.Close()
		return env, queue.ReadQmailEnvelope(f, env)
	}
	if s := c.String("f"); s != "" {
		a, err := address.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("sender %q: %w", s, err)
		}
		env.From = a
	}
	for _, r := range c.Args().Slice() {
		a, err := address.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", r, err)
		}
		env.To = append(env.To, queue.Recipient{Addr: a})
	}
	return env, nil
}

var runCmd = &cli.Command{
	Name:  "run",
	Usage: "the scheduler: deliver, retry and bounce until stopped",
	Flags: []cli.Flag{
		&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "messages in delivery at once"},
		&cli.StringFlag{Name: "retry", Usage: "back-off schedule, comma-separated durations (default 1m,5m,15m,30m,1h,2h,4h)"},
		&cli.DurationFlag{Name: "lifetime", Value: 5 * 24 * time.Hour, Usage: "bounce what is still undelivered after this long"},
		&cli.StringFlag{Name: "deliver", Usage: "the deliver program (default: beside this one)"},
		&cli.StringFlag{Name: "deliver-mode", Value: "auto", Usage: "local delivery `MODE`: direct (in this process), process (deliver --lmtp children), or auto (direct when this process owns ROOT/mail)"},
		&cli.StringFlag{Name: "user", Usage: "started as root, run as `ACCOUNT` (mailsrv-queue)"},
		&cli.StringFlag{Name: "deliver-user", Usage: "started as root, run the deliver workers as `ACCOUNT` (mailsrv-mail), through a spawner that keeps root"},
	},
	Action: func(c *cli.Context) error {
		root := c.String("root")
		q, err := openQueue(c)
		if err != nil {
			return err
		}
		retry, err := parseRetry(c.String("retry"))
		if err != nil {
			return cli.Exit("queue run: --retry: "+err.Error(), exitUsage)
		}
		cfg := config.Open(root)
		if du := c.String("deliver-user"); du != "" {
			// Alias expansion needs to know the users, not their hashes.
			helper, err := startHelper(root, du)
			if err != nil {
				return cli.Exit("queue run: "+err.Error(), exitTemp)
			}
			defer helper.Close()
			defer daemon.StopWhen(helper.Done(), "auth helper", slog.Default())()
			cfg.Lookup = helper.Lookup
		}
		local, closeLocal, err := localTransport(c, cfg)
		if err != nil {
			return err
		}
		defer closeLocal()
		if err := privsep.DropTo(c.String("user")); err != nil {
			return cli.Exit("queue run: "+err.Error(), exitTemp)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		s := &queue.Scheduler{Q: q, Cfg: cfg, Local: local,
			Concurrency: c.Int("concurrency"), Retry: retry, Lifetime: c.Duration("lifetime")}
		slog.Info("queue run starting", "root", root, "concurrency", s.Concurrency)
		if err := s.Run(ctx); err != nil {
			return cli.Exit("queue run: "+err.Error(), exitTemp)
		}
		slog.Info("queue run stopped")
		return nil
	},
}

// localTransport picks how local deliveries are made: in this process when
// it owns the mailboxes (no privilege to separate), else through long-lived
// `deliver --lmtp` workers, which run as the mailbox owner.
func localTransport(c *cli.Context, cfg *config.Config) (queue.Transport, func(), error) {
	mode := c.String("deliver-mode")
	switch mode {
	case "auto", "direct", "process":
	default:
		return nil, nil, cli.Exit("queue run: --deliver-mode: want auto, direct or process", exitUsage)
	}
	if c.String("deliver-user") != "" {
		mode = "process"
	}
	if mode == "auto" {
		if own, err := deliver.OwnsMailboxes(cfg.MailDir()); err == nil && own {
			mode = "direct"
		}
	}
	if mode == "direct" {
		slog.Info("delivering in-process")
		return deliver.Transport{D: &deliver.Deliverer{Cfg: cfg, QuotaTempFail: deliver.QuotaTempFailFromEnv()}, MaxSize: deliver.DefaultMaxSize}, func() {}, nil
	}
	prog := c.String("deliver")
	if prog == "" {
		prog = progs.Path("deliver")
	}
	pool := &lmtp.Pool{Argv: []string{prog, "--root", cfg.Root, "--lmtp"}, Max: c.Int("concurrency"), Name: "queue"}
	du := c.String("deliver-user")
	if du == "" {
		return pool, pool.Close, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, cli.Exit("queue run: "+err.Error(), exitTemp)
	}
	sp, err := privsep.StartSpawner(append([]string{self, "--root", cfg.Root, "spawn", "--user", du, "--"}, pool.Argv...))
	if err != nil {
		return nil, nil, cli.Exit("queue run: "+err.Error(), exitTemp)
	}
	pool.Spawn = sp.Spawn
	disarm := daemon.StopWhen(sp.Done(), "queue spawn", slog.Default())
	slog.Info("delivering through deliver workers", "user", du)
	return pool, func() { disarm(); pool.Close(); _ = sp.Close() }, nil
}

// startHelper starts `mailctl auth-helper` as account, to look users up.
func startHelper(root, account string) (*authhelper.Client, error) {
	a, err := privsep.Lookup(account)
	if err != nil {
		return nil, err
	}
	return authhelper.Start([]string{progs.Path("mailctl"), "--root", root, "auth-helper"}, a)
}

var spawnCmd = &cli.Command{
	Name:      "spawn",
	Usage:     "(started by queue run --deliver-user) start deliver workers as ACCOUNT on request from descriptor 3",
	ArgsUsage: "-- PROGRAM [ARG...]",
	Flags:     []cli.Flag{&cli.StringFlag{Name: "user", Required: true, Usage: "run the workers as `ACCOUNT`"}},
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.Exit("queue spawn: no program", exitUsage)
		}
		a, err := privsep.Lookup(c.String("user"))
		if err != nil {
			return cli.Exit("queue spawn: "+err.Error(), exitTemp)
		}
		f := os.NewFile(3, "spawn")
		if f == nil {
			return cli.Exit("queue spawn: no descriptor 3", exitUsage)
		}
		if err := privsep.ServeSpawn(f, c.Args().Slice(), a, slog.Default()); err != nil {
			return cli.Exit("queue spawn: "+err.Error(), exitTemp)
		}
		return nil
	},
}

func parseRetry(s string) ([]time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bad duration %q", f)
		}
		out = append(out, d)
	}
	return out, nil
}

var listCmd = &cli.Command{
	Name:  "list",
	Usage: "show what is queued, one line per recipient",
	Action: func(c *cli.Context) error {
		q, err := openQueue(c)
		if err != nil {
			return err
		}
		entries, err := q.List()
		if err != nil {
			return cli.Exit("queue list: "+err.Error(), exitTemp)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tAGE\tSTATE\tTRIES\tNEXT\tFROM\tRECIPIENT\tLAST ERROR")
		for _, e := range entries {
			next := "-"
			if !e.Next.IsZero() {
				next = e.Next.Local().Format(time.DateTime)
			}
			from := e.From
			if from == "" {
				from = "<>"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Age.Round(time.Second), e.State,
				e.Attempts, next, from, e.Rcpt, e.LastErr)
		}
		if err := w.Flush(); err != nil {
			return cli.Exit(err.Error(), exitTemp)
		}
		return nil
	},
}

var flushCmd = &cli.Command{
	Name:  "flush",
	Usage: "ask the running scheduler to retry every deferred delivery now",
	Action: func(c *cli.Context) error {
		q, err := openQueue(c)
		if err != nil {
			return err
		}
		q.Poke('F')
		return nil
	},
}

var deleteCmd = &cli.Command{
	Name:      "delete",
	Usage:     "remove messages from the queue, without a bounce",
	ArgsUsage: "ID...",
	Action: func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.Exit("queue delete: name at least one queue id (see queue list)", exitUsage)
		}
		q, err := openQueue(c)
		if err != nil {
			return err
		}
		for _, id := range c.Args().Slice() {
			if err := q.Delete(id); err != nil {
				code := exitTemp
				if errors.Is(err, os.ErrNotExist) {
					code = exitNoInput
				}
				return cli.Exit("queue delete: "+err.Error(), code)
			}
			slog.Info("deleted from the queue", "id", id)
		}
		return nil
	},
}
