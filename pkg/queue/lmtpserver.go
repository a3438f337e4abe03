package queue

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/lmtp"
)

// ServeLMTP speaks LMTP (RFC 2033) on conn, injecting each message it
// receives: the long-lived form of `queue inject` that smtpd keeps running.
// Every recipient of a message gets the same reply, since one queue file
// holds them all. It returns when the client quits or the connection ends.
func (q *Queue) ServeLMTP(conn net.Conn, maxSize int64, proto string) error {
	return q.ServeLMTPFrom(conn, maxSize, proto, true)
}

// ServeLMTPFrom is ServeLMTP for a caller whose word on who sent the
// message may not be taken: unless trustAuth, MAIL's AUTH= parameter (the
// authenticated submitter, which later decides relaying and signing) is
// ignored. queue inject, set-group-ID so that anyone may queue mail,
// trusts it only from root and smtpd's account.
func (q *Queue) ServeLMTPFrom(conn net.Conn, maxSize int64, proto string, trustAuth bool) error {
	return lmtp.Serve(conn, "queue", func() smtp.Session {
		return &lmtpSession{q: q, maxSize: maxSize, proto: proto, trustAuth: trustAuth}
	})
}

type lmtpSession struct {
	q         *Queue
	maxSize   int64
	proto     string
	trustAuth bool
	env       Envelope
	raw       []string // the RCPT arguments as sent: go-smtp keys replies by them
}

func (s *lmtpSession) Reset() { s.env, s.raw = Envelope{}, nil }

func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, opts *smtp.MailOptions) error {
	s.env, s.raw = Envelope{Proto: s.proto}, nil
	if from != "" {
		a, err := address.Parse(from)
		if err != nil {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "bad sender address"}
		}
		s.env.From = a
	}
	if opts != nil && opts.Auth != nil && !s.trustAuth {
		slog.Warn("AUTH= from an untrusted caller ignored", "uid", os.Getuid(), "auth", *opts.Auth)
	} else if opts != nil && opts.Auth != nil {
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
	s.raw = append(s.raw, to)
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
	if reply == nil {
		// A 250 carrying the id, which smtpd shows its client.
		reply = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "queued as " + id}
	}
	for _, to := range s.raw {
		status.SetStatus(to, reply)
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

// AuthMechanisms makes the server advertise AUTH, the only way go-smtp's
// client passes the AUTH= parameter of MAIL (RFC 4954 section 5), which
// carries the user smtpd authenticated into the envelope. The client on
// this pipe is smtpd itself; nobody ever logs in here.
func (s *lmtpSession) AuthMechanisms() []string { return []string{"EXTERNAL"} }

// Auth refuses every login.
func (s *lmtpSession) Auth(string) (sasl.Server, error) {
	return nil, &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "no login here"}
}
