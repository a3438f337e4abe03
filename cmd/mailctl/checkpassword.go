package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"mailsrv/pkg/checkpassword"
	"mailsrv/pkg/config"
)

// checkpasswordCommand is the DJB checkpassword interface: the user name
// and password on descriptor 3, then PROG is run when they match.
func checkpasswordCommand() *cli.Command {
	return &cli.Command{
		Name:            "checkpassword",
		Usage:           "check the user and password on descriptor 3 against etc/users, then run PROG (DJB checkpassword)",
		ArgsUsage:       "PROG [ARG...]",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			fd3 := os.NewFile(3, "fd3")
			if fd3 == nil {
				os.Exit(checkpassword.ExitMisuse)
			}
			os.Exit(checkpassword.Serve(config.Open(c.String("root")), fd3, c.Args().Slice()))
			return nil
		},
	}
}
