package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/queue"
)

// Data receives one message (DATA, RFC 5321 section 4.1.1.4, or a series
// of BDAT chunks, RFC 3030) and hands it to the queue. The reply is 250
// only once the queue has it durably; a fault that may pass gives 4xx.
func (s *Session) Data(r io.Reader) error {
	id := newID()
	sp := &spool{dir: s.srv.opts.SpoolDir}
	defer func() {
		if err := sp.Close(); err != nil {
			s.log.Warn("closing spool", "id", id, "err", err)
		}
	}()
	o := &s.srv.opts
	f := newLineFilter(sp, o.MaxLine, o.MaxHops)
	src := &deadlineReader{r: r, conn: s.conn.Conn(), timeout: o.Timeout}
	if _, err := io.Copy(f, src); err != nil {
		e := s.readFailed(f, err)
		s.logRejected(id, f.size, e, err)
		return e
	}
	if err := f.Close(); err != nil {
		e := asReply(err)
		if f.werr != nil {
			e = spoolReply(err)
		}
		s.logRejected(id, f.size, e, err)
		return e
	}
	if s.authUser != "" {
		if e := s.submitted(sp); e != nil {
			s.logRejected(id, f.size, e, errors.New(e.Message))
			return e
		}
	}
	msg, err := sp.Reader()
	if err != nil {
		s.logRejected(id, f.size, errQueueTemp, err)
		return errQueueTemp
	}
	now := time.Now()
	env := &queue.Envelope{
		From: s.from, To: s.rcpts, Received: now, Client: s.cc.ip,
		Helo: s.conn.Hostname(), Auth: s.authUser, Proto: s.proto(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.InjectTimeout)
	defer cancel()
	qid, err := o.Injector.Inject(ctx, env, io.MultiReader(strings.NewReader(s.received(id, now)), msg))
	if err != nil {
		e := queueReply(err)
		s.logRejected(id, f.size, e, err)
		return e
	}
	s.cc.msgs.Add(1)
	s.log.Info("message accepted", "id", id, "queue_id", qid, "from", s.from.String(),
		"rcpts", len(s.rcpts), "size", f.size, "client", s.cc.ip)
	text := "OK: queued"
	if qid != "" {
		text += " as " + qid
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: text}
}

// readFailed turns an error reading the client's data into the reply.
// Faults that leave the byte stream out of step end the connection.
func (s *Session) readFailed(f *lineFilter, err error) *smtp.SMTPError {
	var ne net.Error
	switch {
	case f.werr != nil: // our spool, not the client
		return spoolReply(err)
	case errors.Is(err, smtp.ErrDataTooLarge):
		return smtp.ErrDataTooLarge // go-smtp reads and drops the rest
	case errors.Is(err, smtp.ErrTooLongLine):
		s.closeWith(errLineTooLong)
		return errLineTooLong
	case errors.Is(err, smtp.ErrDataReset):
		return errAborted
	case errors.As(err, &ne) && ne.Timeout():
		s.closeWith(errTimeout)
		return errTimeout
	}
	// The client went away (EOF) or the socket failed: nothing to answer.
	s.closeWith(errAborted)
	return errAborted
}

// queueReply maps an Injector's error to the reply: a permanent refusal
// (by a filter, say) keeps its reason; anything else is temporary, since a
// fault that may pass must never become a 5xx (DESIGN.md, "Transient is
// not permanent"). A temporary failure's own text (which may name files)
// goes to the log, not to the client.
func queueReply(err error) *smtp.SMTPError {
	var qe *queue.Error
	isQE := errors.As(err, &qe)
	if isQE && !qe.Temporary {
		code := qe.Code
		if code < 500 || code > 599 {
			code = 554
		}
		return reply(code, smtp.EnhancedCode{5, 7, 1}, orDefault(qe.Msg, "Message refused"))
	}
	if isDiskFull(err) || isQE && qe.Code == 452 {
		return errQueueFull
	}
	return errQueueTemp
}

// spoolReply is the reply when the spool could not be written.
func spoolReply(err error) *smtp.SMTPError {
	if isDiskFull(err) {
		return errQueueFull
	}
	return errQueueTemp
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// asReply returns err as a reply; an unexpected error counts as temporary.
func asReply(err error) *smtp.SMTPError {
	var e *smtp.SMTPError
	if errors.As(err, &e) {
		return e
	}
	return errQueueTemp
}

func (s *Session) logRejected(id string, size int64, e *smtp.SMTPError, cause error) {
	s.log.Info("message rejected", "id", id, "from", s.from.String(), "rcpts", len(s.rcpts),
		"size", size, "client", s.cc.ip, "reply", fmt.Sprintf("%d %d.%d.%d", e.Code,
			e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2]), "err", cause)
}

// deadlineReader moves the connection's read deadline forward before each
// read, so that the idle timeout applies between reads during DATA as it
// does between commands (go-smtp sets it only when reading a command).
type deadlineReader struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if err := d.conn.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, fmt.Errorf("setting read deadline: %w", err)
	}
	return d.r.Read(p)
}

// submitted checks the From header of a message from an authenticated
// client.
func (s *Session) submitted(sp *spool) *smtp.SMTPError {
	msg, err := sp.Reader()
	if err != nil {
		s.log.Warn("reading spool", "err", err)
		return errQueueTemp
	}
	return s.checkFrom(msg)
}

// received returns the trace header this server adds (RFC 5321 section
// 4.4), with LF line endings like the rest of the stored message. No
// reverse DNS lookup is made: the client is named by its HELO and its IP.
// Submitted mail (RFC 6409) leaves out the "from" part unless ReceivedIP
// is set, so that the header does not tell the world where the user was
// (the user's address is not in it either).
func (s *Session) received(id string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: ")
	if !s.srv.opts.Submission || s.srv.opts.ReceivedIP {
		b.WriteString("from " + headerSafe(s.conn.Hostname()))
		if s.cc.ip != "" {
			b.WriteString(" (" + addressLiteral(s.cc.ip) + ")")
		}
		b.WriteString("\n\t")
	}
	b.WriteString("by " + headerSafe(s.srv.opts.Hostname) + " (mailsrv) with " + s.proto() + " id " + id)
	if len(s.rcpts) == 1 {
		b.WriteString("\n\tfor <" + headerSafe(s.rcpts[0].Addr.String()) + ">")
	}
	b.WriteString("; " + now.Format(time.RFC1123Z) + "\n")
	return b.String()
}

// addressLiteral formats an IP as RFC 5321 section 4.1.3 does.
func addressLiteral(ip string) string {
	if strings.Contains(ip, ":") {
		return "[IPv6:" + ip + "]"
	}
	return "[" + ip + "]"
}

// headerSafe keeps a client-given name to printable characters outside
// comments' parentheses, at most 255 of them, so that it cannot break or
// forge header lines.
func headerSafe(v string) string {
	if len(v) > 255 {
		v = v[:255]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 127 || r == '(' || r == ')' || r == '\\' {
			return '?'
		}
		return r
	}, v)
}
