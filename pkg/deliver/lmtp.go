package deliver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/lmtp"
)

// ServeLMTP speaks LMTP (RFC 2033) on conn and delivers each message to its
// recipients, one reply per recipient: the long-lived worker mode that
// `queue run` keeps running, so no process is started per message.
func (d *Deliverer) ServeLMTP(conn net.Conn, maxSize int64) error {
	return lmtp.Serve(conn, "deliver", func() smtp.Session { return &lmtpSession{d: d, maxSize: maxSize} })
}

type lmtpSession struct {
	d       *Deliverer
	maxSize int64
	from    string
	rcpts   []address.Address
	raw     []string // the RCPT arguments as sent: go-smtp keys replies by them
}

func (s *lmtpSession) Reset()        { s.from, s.rcpts, s.raw = "", nil, nil }
func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.rcpts, s.raw = from, nil, nil
	return nil
}

func (s *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	a, err := address.Parse(to)
	if err != nil {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address"}
	}
	if _, ok, err := s.d.Cfg.LocalUser(a); err != nil || !ok {
		if err != nil {
			return toSMTP(tempErr(err))
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user: " + a.String()}
	}
	s.rcpts = append(s.rcpts, a)
	s.raw = append(s.raw, to)
	return nil
}

func (s *lmtpSession) Data(io.Reader) error { return errors.New("LMTPData is used") }

func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	msg, rerr := ReadMessage(r, s.maxSize)
	_, _ = io.Copy(io.Discard, r)
	for i, a := range s.rcpts {
		err := rerr
		if err == nil {
			var path string
			if path, err = s.d.ToUser(a, s.from, msg); err == nil {
				slog.Debug("delivered", "rcpt", a.String(), "file", path)
			}
		}
		if err != nil {
			slog.Info("delivery failed", "rcpt", a.String(), "err", err)
		}
		status.SetStatus(s.raw[i], toSMTP(err))
	}
	return nil
}

func toSMTP(err error) error {
	if err == nil {
		return nil
	}
	de := ErrorOf(err)
	var ec smtp.EnhancedCode
	if _, e := fmt.Sscanf(de.Status, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); e != nil {
		ec = smtp.EnhancedCodeNotSet
	}
	return &smtp.SMTPError{Code: de.Code, EnhancedCode: ec, Message: de.Msg}
}
