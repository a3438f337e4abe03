// Package progs finds mailsrv's other programs. They are installed side by
// side in a private directory (qmail's way: plain names such as "queue" and
// "deliver" clash with nothing there), so a program looks first in
// MAILSRV_LIBEXEC, then beside its own executable, then on PATH.
package progs

import (
	"os"
	"os/exec"
	"path/filepath"
)

// EnvLibexec names the directory holding the programs.
const EnvLibexec = "MAILSRV_LIBEXEC"

// Path returns the path of program name ("queue", "deliver", ...).
func Path(name string) string {
	if dir := os.Getenv(EnvLibexec); dir != "" {
		return filepath.Join(dir, name)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}
