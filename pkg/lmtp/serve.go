package lmtp

import (
	"errors"
	"net"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/daemon"
	"mailsrv/pkg/ucspi"
)

// Serve speaks LMTP on one connection (the child's side: stdin/stdout),
// creating a session with newSession, until the client quits or the
// connection ends. name is the server's name in its greeting.
func Serve(conn net.Conn, name string, newSession func() smtp.Session) error {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return newSession(), nil
	}))
	s.LMTP = true
	s.Domain = name
	s.EnableSMTPUTF8 = true
	s.MaxMessageBytes = 0 // the sessions enforce their own limits
	s.MaxRecipients = 0
	s.ErrorLog = daemon.LibLog{}
	// A pipe to our own parent: no TLS, and no password ever crosses it.
	// Sessions that offer AUTH do so to receive MAIL's AUTH= parameter.
	s.AllowInsecureAuth = true
	l := ucspi.NewSingleListener(conn)
	err := s.Serve(l)
	<-l.Done()
	if errors.Is(err, ucspi.ErrDone) {
		return nil
	}
	return err
}
