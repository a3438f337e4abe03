package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/lmtp"
)

// ProcessInjector hands messages to a pool of long-lived `queue inject
// --lmtp` processes, so the program that reads the network (smtpd) never
// writes the queue itself and no process is started per message.
type ProcessInjector struct {
	pool *lmtp.Pool
}

// NewProcessInjector runs up to max children of argv (for example
// ["/usr/lib/mailsrv/queue", "--root", R, "inject", "--lmtp"]).
func NewProcessInjector(argv []string, max int) *ProcessInjector {
	return &ProcessInjector{pool: &lmtp.Pool{Argv: argv, Max: max, Name: "smtpd"}}
}

// Close stops the idle children.
func (p *ProcessInjector) Close() { p.pool.Close() }

// Inject implements Injector.
func (p *ProcessInjector) Inject(ctx context.Context, env *Envelope, msg io.Reader) (string, error) {
	rcpts := make([]string, len(env.To))
	for i, r := range env.To {
		rcpts[i] = r.Addr.String()
	}
	var opts *smtp.MailOptions
	if env.Auth != "" {
		opts = &smtp.MailOptions{Auth: &env.Auth} // RFC 4954 section 5: AUTH=
	}
	res, err := p.pool.Send(ctx, env.From.String(), opts, rcpts, msg)
	if err != nil {
		return "", fromSMTP(err)
	}
	// The queue file holds every recipient or none, so one answer stands
	// for all; take the first.
	if res[0].Err != nil {
		return "", fromSMTP(res[0].Err)
	}
	// "<rcpt> queued as ID"
	_, id, _ := strings.Cut(res[0].Text, "queued as ")
	return id, nil
}

// fromSMTP turns an LMTP reply into a queue Error; anything that is not a
// 5xx reply is temporary.
func fromSMTP(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &Error{Temporary: se.Code < 500, Code: se.Code, Msg: se.Message}
	}
	return &Error{Temporary: true, Code: 451, Msg: "queue unavailable: " + err.Error()}
}

// ExecInjector starts Argv once per message, with the message on stdin and
// "-f SENDER -- RCPT..." appended: the interface of `queue inject`, and so of
// any filter put in front of it (the MAILSRV_QUEUE variable, as qmail's
// QMAILQUEUE). Exit 0 is success; 65, 67, 68 and 77 are permanent refusals
// whose last line on stderr is the reason; anything else (75, a crash, a
// signal) is temporary.
type ExecInjector struct {
	Argv []string
}

// Inject implements Injector.
func (e ExecInjector) Inject(ctx context.Context, env *Envelope, msg io.Reader) (string, error) {
	args := append([]string{}, e.Argv[1:]...)
	args = append(args, "-f", env.From.String(), "--")
	for _, r := range env.To {
		args = append(args, r.Addr.String())
	}
	cmd := exec.CommandContext(ctx, e.Argv[0], args...)
	cmd.Stdin = msg
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &limitedBuffer{buf: &stderr, max: 4096}
	err := cmd.Run()
	if err == nil {
		return strings.TrimSpace(out.String()), nil
	}
	reason := lastLine(stderr.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case 65, 67, 68, 77:
			if reason == "" {
				reason = "message refused"
			}
			return "", &Error{Code: 554, Msg: reason}
		}
	}
	if reason == "" {
		reason = err.Error()
	}
	return "", &Error{Temporary: true, Code: 451, Msg: fmt.Sprintf("%s: %s", filepath.Base(e.Argv[0]), reason)}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return clean(s)
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
