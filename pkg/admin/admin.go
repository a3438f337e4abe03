// Package admin does the work behind mailctl's subcommands: creating a
// root, and adding, removing and listing domains, users and aliases. Every
// change goes through config.Edit, so it is validated as a whole file,
// written atomically under the root's lock, and seen by running daemons
// without a restart. Errors carry a kind that ExitCode maps to a sysexits.h
// status; see mailctl(8) and mailsrv-files(5).
package admin

import (
	"errors"
	"fmt"
	"os"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// Exit statuses from sysexits.h.
const (
	ExitOK          = 0
	ExitUsage       = 64 // EX_USAGE: wrong arguments
	ExitDataErr     = 65 // EX_DATAERR: bad name, weak password, invalid file
	ExitNoUser      = 67 // EX_NOUSER: no such user, domain or alias
	ExitCantCreate  = 73 // EX_CANTCREAT: cannot create the layout or a mailbox
	ExitTempFail    = 75 // EX_TEMPFAIL: I/O or lock failure; try again
	ExitPermission  = 77 // EX_NOPERM: not allowed to read or write a file
	MaxPasswordSize = 1024
)

// Kinds of failure, each with its exit status. Test with errors.Is.
var (
	ErrUsage      = errors.New("usage error")
	ErrData       = errors.New("bad data")
	ErrNotFound   = errors.New("no such entry")
	ErrCantCreate = errors.New("cannot create")
)

// kindError is an error with a kind: its message is the cause's, and
// errors.Is finds both the kind and whatever the cause wraps.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// fail returns an error of the given kind; format and args follow
// fmt.Errorf, %w included.
func fail(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

// Usagef returns a usage error (exit 64), for the command line's own checks.
func Usagef(format string, args ...any) error { return fail(ErrUsage, format, args...) }

// ExitCode maps an error from this package (or from config and auth) to a
// sysexits.h status. Unclassified errors are I/O failures that may pass:
// 75.
func ExitCode(err error) int {
	var fe *config.FileError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, os.ErrPermission):
		return ExitPermission
	case errors.Is(err, ErrNotFound):
		return ExitNoUser
	case errors.Is(err, ErrCantCreate):
		return ExitCantCreate
	case errors.Is(err, ErrData), errors.Is(err, auth.ErrWeakPassword), errors.As(err, &fe):
		return ExitDataErr
	}
	return ExitTempFail
}

// Admin changes the control files of one root.
type Admin struct {
	Cfg *config.Config
}

// New returns an Admin for the root directory.
func New(root string) *Admin {
	return &Admin{Cfg: config.Open(root)}
}
