// Command mailctl is the administrator's command of mailsrv: it creates a
// root and manages its domains, users and aliases. The work is done in
// pkg/admin; this file holds the flags and the wiring. See mailctl(8).
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/admin"
	"mailsrv/pkg/config"
	"mailsrv/pkg/progs"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("prog", "mailctl"))
	app := &cli.App{
		Name:  "mailctl",
		Usage: "administer a mailsrv root: domains, users, aliases, certificates",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: config.DefaultRoot, EnvVars: []string{config.EnvRoot},
				Usage: "root directory of the mail system"},
		},
		Commands: []*cli.Command{
			{Name: "init", Usage: "create the layout of a new root", ArgsUsage: " ",
				Flags: []cli.Flag{&cli.StringFlag{Name: "hostname", Usage: "this host's name, written to etc/me"},
					&cli.BoolFlag{Name: "system", Usage: "as root: create the accounts mailsrv-smtpd, mailsrv-queue, mailsrv-mail and set owners and modes for least privilege"},
					&cli.StringFlag{Name: "queue-program", Usage: "with --system, the queue `PROGRAM` to make set-group-ID mailsrv-queue (default: the one beside mailctl or in $MAILSRV_LIBEXEC)"}},
				Action: func(c *cli.Context) error {
					if err := nargs(c, 0, 0); err != nil {
						return err
					}
					if c.String("hostname") == "" {
						return admin.Usagef("init: --hostname NAME is required")
					}
					if err := admin.Init(c.String("root"), c.String("hostname")); err != nil || !c.Bool("system") {
						return err
					}
					prog := c.String("queue-program")
					if prog == "" {
						prog = progs.Path("queue")
					}
					return admin.InitSystem(c.String("root"), prog, os.Stdout)
				}},
			domainCommand(), userCommand(), aliasCommand(), tlsCommand(), checkpasswordCommand(), authHelperCommand(),
		},
		OnUsageError:   usageError,
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return admin.Usagef("unknown command %q (see mailctl --help)", c.Args().First())
			}
			return admin.Usagef("no command given (see mailctl --help)")
		},
	}
	setUsageErrors(app.Commands)
	if err := app.Run(os.Args); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "mailctl: %v\n", err)
		os.Exit(admin.ExitCode(err))
	}
}

func usageError(_ *cli.Context, err error, _ bool) error { return admin.Usagef("%w", err) }

// setUsageErrors makes bad flags of every command exit 64.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		setUsageErrors(c.Subcommands)
	}
}

// nargs checks the number of arguments: at least min, at most max (max < 0:
// no limit).
func nargs(c *cli.Context, min, max int) error {
	for _, a := range c.Args().Slice() {
		if len(a) > 1 && a[0] == '-' {
			return admin.Usagef("%s: flag %s after an argument: flags go first (usage: %s [OPTIONS] %s)",
				c.Command.HelpName, a, c.Command.HelpName, c.Command.ArgsUsage)
		}
	}
	n := c.NArg()
	if n < min || max >= 0 && n > max {
		return admin.Usagef("%s: wrong number of arguments (usage: %s [OPTIONS] %s)",
			c.Command.HelpName, c.Command.HelpName, c.Command.ArgsUsage)
	}
	return nil
}

func adm(c *cli.Context) *admin.Admin { return admin.New(c.String("root")) }

// parent returns a command whose action, when no subcommand is given, is a
// usage error.
func parent(name, usage string, subs ...*cli.Command) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, Subcommands: subs,
		Action: func(c *cli.Context) error {
			return admin.Usagef("%s: want a subcommand (see mailctl %s --help)", name, name)
		}}
}

func domainCommand() *cli.Command {
	return parent("domain", "manage local domains (etc/domains)",
		&cli.Command{Name: "add", Usage: "add local domains", ArgsUsage: "DOMAIN...",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, -1); err != nil {
					return err
				}
				for _, d := range c.Args().Slice() {
					if err := adm(c).AddDomain(d); err != nil {
						return err
					}
				}
				return nil
			}},
		&cli.Command{Name: "del", Usage: "remove a local domain", ArgsUsage: "DOMAIN",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "also remove its users and aliases (mailboxes stay)"}},
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, 1); err != nil {
					return err
				}
				return adm(c).DelDomain(c.Args().First(), c.Bool("force"))
			}},
		&cli.Command{Name: "list", Usage: "list local domains", ArgsUsage: " ",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 0, 0); err != nil {
					return err
				}
				ds, err := adm(c).Domains()
				return printAll(ds, err)
			}},
	)
}

var passwordStdin = &cli.BoolFlag{Name: "password-stdin", Usage: "read the password from the first line of standard input"}

func readPassword(c *cli.Context, user string) (string, error) {
	return admin.ReadPassword(os.Stdin, os.Stderr, c.Bool("password-stdin"), user)
}

func userCommand() *cli.Command {
	return parent("user", "manage virtual users (etc/users)",
		&cli.Command{Name: "add", Usage: "add a user and create its mailbox", ArgsUsage: "USER@DOMAIN",
			Flags: []cli.Flag{passwordStdin,
				&cli.StringSliceFlag{Name: "attr", Usage: "set an attribute, key=value (repeatable)"}},
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, 1); err != nil {
					return err
				}
				attrs, err := admin.ParseAttrs(c.StringSlice("attr"))
				if err != nil {
					return err
				}
				if err := adm(c).CheckUser(c.Args().First(), false); err != nil {
					return err
				}
				pw, err := readPassword(c, c.Args().First())
				if err != nil {
					return err
				}
				return adm(c).AddUser(c.Args().First(), pw, attrs)
			}},
		&cli.Command{Name: "del", Usage: "remove a user (the mailbox stays unless --purge)", ArgsUsage: "USER@DOMAIN",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "purge", Usage: "also remove the user's mailbox"}},
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, 1); err != nil {
					return err
				}
				a := adm(c)
				if err := a.DelUser(c.Args().First(), c.Bool("purge")); err != nil {
					return err
				}
				return warnAliases(a, c.Args().First())
			}},
		&cli.Command{Name: "passwd", Usage: "change a user's password", ArgsUsage: "USER@DOMAIN",
			Flags: []cli.Flag{passwordStdin},
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, 1); err != nil {
					return err
				}
				if err := adm(c).CheckUser(c.Args().First(), true); err != nil {
					return err
				}
				pw, err := readPassword(c, c.Args().First())
				if err != nil {
					return err
				}
				return adm(c).SetPassword(c.Args().First(), pw)
			}},
		&cli.Command{Name: "quota", Usage: "set a user's mailbox quota (500M, 2G, ...; none to remove it)", ArgsUsage: "USER@DOMAIN SIZE",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 2, 2); err != nil {
					return err
				}
				return adm(c).SetQuota(c.Args().Get(0), c.Args().Get(1))
			}},
		&cli.Command{Name: "list", Usage: "list users, of one domain if given", ArgsUsage: "[DOMAIN]",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 0, 1); err != nil {
					return err
				}
				us, err := adm(c).Users(c.Args().First())
				return printAll(us, err)
			}},
	)
}

func aliasCommand() *cli.Command {
	return parent("alias", "manage aliases (etc/aliases)",
		&cli.Command{Name: "add", Usage: "add targets to an alias (source @DOMAIN is a catch-all)",
			ArgsUsage: "SOURCE TARGET...",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 2, -1); err != nil {
					return err
				}
				return adm(c).AddAlias(c.Args().First(), c.Args().Tail())
			}},
		&cli.Command{Name: "del", Usage: "remove an alias, or some of its targets", ArgsUsage: "SOURCE [TARGET...]",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, -1); err != nil {
					return err
				}
				return adm(c).DelAlias(c.Args().First(), c.Args().Tail())
			}},
		&cli.Command{Name: "list", Usage: "list aliases, of one domain if given", ArgsUsage: "[DOMAIN]",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 0, 1); err != nil {
					return err
				}
				as, err := adm(c).Aliases(c.Args().First())
				return printAll(as, err)
			}},
	)
}

// warnAliases tells, on stderr, which aliases still name a removed user.
func warnAliases(a *admin.Admin, user string) error {
	srcs, err := a.AliasesTo(user)
	if err != nil || len(srcs) == 0 {
		return err
	}
	_, err = fmt.Fprintf(os.Stderr, "mailctl: warning: aliases still name %s as a target: %s\n"+
		"mailctl: warning: mail to them fails unless a catch-all takes %s (see mailctl alias del)\n",
		user, strings.Join(srcs, " "), user)
	return err
}

// printAll prints one entry a line on stdout.
func printAll[T any](items []T, err error) error {
	if err != nil {
		return err
	}
	for _, it := range items {
		if _, err := fmt.Println(it); err != nil {
			return err
		}
	}
	return nil
}
