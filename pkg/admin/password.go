package admin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadPasswordLine reads a password as the first line of r (the
// --password-stdin way), without its line ending. It refuses input with no
// line at all, a line over MaxPasswordSize bytes, and control characters.
func ReadPasswordLine(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, MaxPasswordSize+2)
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fail(ErrData, "password longer than %d bytes", MaxPasswordSize)
	case errors.Is(err, io.EOF) && len(line) == 0:
		return "", Usagef("no password on standard input")
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	return checkPasswordChars(pw)
}

func checkPasswordChars(pw string) (string, error) {
	if len(pw) > MaxPasswordSize {
		return "", fail(ErrData, "password longer than %d bytes", MaxPasswordSize)
	}
	if strings.ContainsFunc(pw, func(r rune) bool { return r < 32 || r == 127 }) {
		return "", fail(ErrData, "password contains a control character")
	}
	return pw, nil
}

// ReadPassword gets a new password for user: from the first line of stdin
// when fromStdin is set, otherwise by asking twice on the terminal that
// stdin is (prompts on prompt, nothing echoed). Without either it fails
// with a usage error.
func ReadPassword(stdin *os.File, prompt io.Writer, fromStdin bool, user string) (string, error) {
	if fromStdin {
		return ReadPasswordLine(stdin)
	}
	fd := int(stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", Usagef("standard input is not a terminal: give the password with --password-stdin")
	}
	ask := func(p string) (string, error) {
		if _, err := fmt.Fprint(prompt, p); err != nil {
			return "", err
		}
		b, err := term.ReadPassword(fd)
		_, _ = fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return checkPasswordChars(string(b))
	}
	pw, err := ask("New password for " + user + ": ")
	if err != nil {
		return "", err
	}
	again, err := ask("Retype the password: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", fail(ErrData, "the two passwords differ")
	}
	return pw, nil
}
