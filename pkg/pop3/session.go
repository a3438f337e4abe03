package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/sasl"
)

// state is a session state of RFC 1939 section 3.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
	stateDone // after QUIT (and the UPDATE state) or a fatal error
)

// session is one POP3 connection.
type session struct {
	srv  *Server
	conn net.Conn      // the connection; a *tls.Conn after STLS
	r    *bufio.Reader // reads conn
	w    *bufio.Writer // writes conn; flushed when no pipelined command waits
	log  *slog.Logger  // with conn id and remote address

	state      state
	secure     bool   // TLS is on (STLS or implicit TLS)
	user       string // the USER argument, waiting for PASS
	authFails  int    // failed logins
	badCmds    int    // bad commands in a row
	retrieved  int    // messages sent by RETR, for the log
	loggedIn   bool   // a login succeeded
	account    config.User
	box        *Mailbox     // snapshot taken at login
	lock       *MailboxLock // held from login to the end of the session
	lastUpdate string       // outcome of UPDATE, for the log
	shutdown   atomic.Bool  // the server is stopping: deadlines are not idleness
	sasl       *sasl.Server // checks logins; knows TLS and the peer
}

func newSession(ctx context.Context, srv *Server, c net.Conn, log *slog.Logger) *session {
	_, secure := c.(*tls.Conn)
	var remote netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote, _ = netip.AddrFromSlice(a.IP)
		remote = remote.Unmap()
	}
	return &session{
		srv: srv, conn: c, log: log, secure: secure,
		r: bufio.NewReaderSize(c, 4096),
		w: bufio.NewWriterSize(deadlineWriter{c, srv.idle()}, 64*1024),
		sasl: &sasl.Server{
			Auth: srv.authenticator(), Service: "pop3d", RemoteIP: remote,
			TLS: secure, Insecure: srv.AllowInsecureAuth, Ctx: ctx,
		},
	}
}

// deadlineWriter gives every write to the connection its own deadline, so
// a client that stops reading in the middle of a long RETR is cut off
// after the idle timeout, while a slow one that keeps reading is not.
type deadlineWriter struct {
	c    net.Conn
	idle time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.c.SetWriteDeadline(time.Now().Add(d.idle))
	return d.c.Write(p)
}

// run greets the client and serves commands until QUIT, an error or the
// end of the connection.
func (s *session) run() {
	s.log.Debug("connect")
	writeOK(s.w, "POP3 server ready")
	if s.flush() != nil {
		return
	}
	for s.state != stateDone {
		if !s.serveOne() {
			return
		}
		if s.r.Buffered() == 0 || s.w.Buffered() > 32*1024 {
			// RFC 2449 section 6.6: with PIPELINING, answers to
			// commands already received may go out together.
			if s.flush() != nil {
				return
			}
		}
	}
	_ = s.flush()
}

// serveOne reads and answers one command. It returns false when the
// connection is gone.
func (s *session) serveOne() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.idle()))
	if s.shutdown.Load() {
		s.readFailed(os.ErrDeadlineExceeded)
		return false
	}
	line, err := ReadLine(s.r, MaxAuthLine)
	if errors.Is(err, ErrLineTooLong) {
		s.bad("line too long")
		return true
	}
	if err != nil {
		s.readFailed(err)
		return false
	}
	cmd, err := ParseCommand(line)
	switch {
	case err != nil:
		s.bad("syntax error")
	case cmd.Name != "AUTH" && len(line)+2 > MaxCommandLine:
		s.bad("line too long")
	default:
		s.dispatch(cmd)
	}
	return true
}

// readFailed logs why reading stopped.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET):
		s.log.Debug("connection closed by client")
	case s.shutdown.Load():
		s.log.Info("server shutting down")
		_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = s.conn.Write([]byte("-ERR [SYS/TEMP] server shutting down\r\n"))
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Info("idle timeout")
		writeErr(s.w, &Error{Msg: "idle for too long, closing"})
		_ = s.flush()
	default:
		s.log.Info("read failed", "err", err)
	}
}

func (s *session) flush() error {
	err := s.w.Flush()
	if err != nil {
		s.log.Info("write failed", "err", err)
		s.state = stateDone
	}
	return err
}

// bad answers a command that could not be parsed or is not allowed, and
// ends the session after MaxBadCommands of them in a row.
func (s *session) bad(msg string) {
	s.badCmds++
	if s.badCmds >= MaxBadCommands {
		writeErr(s.w, &Error{Msg: msg + "; too many bad commands, closing"})
		s.log.Info("too many bad commands")
		s.state = stateDone
		return
	}
	writeErr(s.w, &Error{Msg: msg})
}

func (s *session) fail(e *Error) { writeErr(s.w, e) }

// dispatch runs the handler of a command allowed in the current state
// (RFC 1939 sections 4 and 5).
func (s *session) dispatch(cmd Command) {
	h, ok := commands[cmd.Name]
	if !ok {
		s.bad("unknown command")
		return
	}
	if s.state == stateAuthorization && !h.auth || s.state == stateTransaction && !h.trans {
		s.bad(cmd.Name + " not allowed now")
		return
	}
	s.badCmds = 0
	h.fn(s, cmd)
}

// handler is a command's function and the states it is valid in.
type handler struct {
	fn          func(*session, Command)
	auth, trans bool
}

var commands map[string]handler

func init() {
	commands = map[string]handler{
		"CAPA": {(*session).cmdCAPA, true, true},
		"QUIT": {(*session).cmdQUIT, true, true},
		"NOOP": {(*session).cmdNOOP, false, true},
		"USER": {(*session).cmdUSER, true, false},
		"PASS": {(*session).cmdPASS, true, false},
		"AUTH": {(*session).cmdAUTH, true, false},
		"STLS": {(*session).cmdSTLS, true, false},
		"STAT": {(*session).cmdSTAT, false, true},
		"LIST": {(*session).cmdLIST, false, true},
		"UIDL": {(*session).cmdUIDL, false, true},
		"RETR": {(*session).cmdRETR, false, true},
		"TOP":  {(*session).cmdTOP, false, true},
		"DELE": {(*session).cmdDELE, false, true},
		"RSET": {(*session).cmdRSET, false, true},
	}
}

// close ends the session. Without a QUIT in the TRANSACTION state nothing
// is deleted (RFC 1939 section 6): the snapshot is dropped and the lock
// released.
func (s *session) close() {
	s.releaseLock()
	if s.loggedIn {
		marked := 0
		for _, m := range s.box.Msgs {
			if m.Deleted {
				marked++
			}
		}
		outcome := s.lastUpdate
		if outcome == "" {
			outcome = "none (no QUIT)"
		}
		s.log.Info("session end", "user", s.account.Addr.Key(), "messages", len(s.box.Msgs),
			"retrieved", s.retrieved, "marked_deleted", marked, "update", outcome)
	}
	if err := s.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("close", "err", err)
	}
}

func (s *session) releaseLock() {
	if s.lock != nil {
		if err := s.lock.Unlock(); err != nil {
			s.log.Warn("unlock failed", "err", err)
		}
		s.lock = nil
	}
}
