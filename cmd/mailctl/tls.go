package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/acme"
)

func tlsCommand() *cli.Command {
	return parent("tls", "certificates in etc/tls: self-signed, ACME, list",
		&cli.Command{Name: "selfsigned", Usage: "write a self-signed certificate (tests, make run)", ArgsUsage: "NAME...",
			Flags: []cli.Flag{&cli.DurationFlag{Name: "valid", Value: 365 * 24 * time.Hour, Usage: "validity"}},
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, -1); err != nil {
					return err
				}
				path, err := adm(c).SelfSigned(c.Args().Slice(), c.Duration("valid"))
				if err == nil {
					fmt.Println(path)
				}
				return err
			}},
		&cli.Command{Name: "acme", Usage: "obtain or renew a certificate from an ACME CA (http-01); run it daily", ArgsUsage: "NAME...",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "email", Usage: "contact address for the CA account"},
				&cli.StringFlag{Name: "directory", Value: acme.LetsEncrypt, Usage: "ACME directory URL"},
				&cli.StringFlag{Name: "http", Value: ":80", Usage: "address to answer the http-01 challenge on"},
				&cli.DurationFlag{Name: "renew-before", Value: 30 * 24 * time.Hour, Usage: "renew when less than this is left"},
			},
			Action: func(c *cli.Context) error {
				if err := nargs(c, 1, -1); err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				got, err := adm(c).ACME(ctx, acme.Options{Directory: c.String("directory"), Email: c.String("email"),
					Names: c.Args().Slice(), HTTPAddr: c.String("http"), RenewBefore: c.Duration("renew-before")})
				if err == nil && !got {
					fmt.Println("certificate still valid; nothing to do")
				}
				return err
			}},
		&cli.Command{Name: "list", Usage: "list certificates with their names and expiry", ArgsUsage: " ",
			Action: func(c *cli.Context) error {
				if err := nargs(c, 0, 0); err != nil {
					return err
				}
				certs, err := adm(c).Certificates()
				for _, ci := range certs {
					fmt.Printf("%s\t%s\t%v\t%s\n", ci.File, ci.NotAfter.Format(time.DateOnly), ci.Names, ci.Issuer)
				}
				return err
			}},
	)
}
