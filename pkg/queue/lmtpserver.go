package queue

import (
	"errors"
	"io"
	"log/slog"
	"net"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/lmtp"
)

// ServeLMTP speaks LMTP (RFC 2033) on conn, injecting each message it
// receives: the long-lived form of `queue inject` that smtpd keeps running.
// Every recipient of a message gets the same reply, since one queue file
// holds them all. It returns when the client quits or the connection ends.
func (q *Queue) ServeLMTP(conn net.Conn, maxSize int64, proto string) error {
	return lmtp.Serve(conn, "queue", func() smtp.Session { return &lmtpSession{q: q, maxSize: maxSize, proto: proto} })
}

type lmtpSession struct {
	q       *Queue
	maxSize int64
	proto   string
	env     Envelope
}

func (s *lmtpSession) Reset() { s.env = Envelope{} }

func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, opts *smtp.MailOptions) error {
	s.env = Envelope{Proto: s.proto}
	if from != "" {
		a, err := address.Parse(from)
		if err != nil {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address"}
		}
		s.env.From = a
	}
	if opts != nil && opts.Auth != nil {
		s.env.Auth = *opts.Auth
	}
	return nil
}

func (s *lmtpSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	a, err := address.Parse(to)
	if err != nil {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address"}
	}
	s.env.To = append(s.env.To, Recipient{Addr: a})
	return nil
}

func (s *lmtpSession) Data(r io.Reader) error {
	return errors.New("LMTPData is used")
}

func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	id, err := s.q.InjectLimit(&s.env, r, s.maxSize)
	// Drain what the client still sends, so that the next command lines up.
	_, _ = io.Copy(io.Discard, r)
	reply := toSMTP(err)
	if err != nil {
		slog.Warn("inject failed", "err", err)
	} else {
		slog.Info("queued", "id", id, "from", s.env.From.String(), "rcpts", len(s.env.To), "auth", s.env.Auth)
	}
	for _, rc := range s.env.To {
		status.SetStatus(rc.Addr.String(), reply)
	}
	return nil
}

// toSMTP turns an injection result into the LMTP reply.
func toSMTP(err error) error {
	if err == nil {
		return nil
	}
	var qe *Error
	if !errors.As(err, &qe) {
		qe = &Error{Temporary: true, Code: 451, Msg: err.Error()}
	}
	code := qe.Code
	if code == 0 {
		code = 554
		if qe.Temporary {
			code = 451
		}
	}
	ec := smtp.EnhancedCode{5, 3, 0}
	switch {
	case code == 452:
		ec = smtp.EnhancedCode{4, 3, 1}
	case code == 552:
		ec = smtp.EnhancedCode{5, 3, 4}
	case qe.Temporary:
		ec = smtp.EnhancedCode{4, 3, 0}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: qe.Msg}
}
