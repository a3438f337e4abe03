package imap

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
	"mailsrv/pkg/sasl"
)

// state is the connection state of RFC 3501 section 3.
type state int

const (
	stateNotAuth state = iota
	stateAuth
	stateSelected
	stateLogout
)

// session is one client connection.
type session struct {
	srv    *Server
	ctx    context.Context // ends when the daemon shuts down
	conn   net.Conn
	log    *slog.Logger
	lim    wire.Limits
	idle   time.Duration // idle timeout
	poll   time.Duration // IDLE polling interval
	maxBad int           // bad commands in a row before BYE
	r      *wire.Reader
	w      *wire.Writer

	state        state
	tls          bool         // the connection is encrypted (STARTTLS or --tls)
	sasl         *sasl.Server // checks logins; knows TLS and the peer
	bad          int          // bad commands in a row
	authFailures int          // failed logins
	user         config.User  // after login
	store        *mailstore.Store
	sel          *selected // in the selected state
	rev2         bool      // ENABLE IMAP4rev2 (RFC 9051), see rev2.go
	utf8Accept   bool      // ENABLE UTF8=ACCEPT (RFC 6855)

	watchPoll time.Duration // IDLE polling interval beside inotify
	condstore bool          // CONDSTORE enabled (RFC 7162 section 3.1)
	qresync   bool          // QRESYNC enabled (RFC 7162 section 3.2.3)
}

// command is one parsed command line being executed.
type command struct {
	tag  string
	name string // upper case, without "UID "
	uid  bool   // the UID variant (RFC 3501 section 6.4.8)
	p    *wire.Parser
}

// status is a tagged response other than plain "OK name completed". As an
// error it ends the command with that response.
type status struct {
	kind string // OK, NO or BAD
	code string // response code without brackets, or ""
	text string
}

func (e *status) Error() string { return e.kind + " " + e.text }

func no(code, text string) error { return &status{kind: "NO", code: code, text: text} }
func bad(text string) error      { return &status{kind: "BAD", text: text} }
func ok(code, text string) error { return &status{kind: "OK", code: code, text: text} }

// handler runs a command; states lists where it is allowed.
type handler struct {
	fn     func(s *session, c *command) error
	states []state
}

var (
	anyState  = []state{stateNotAuth, stateAuth, stateSelected}
	notAuth   = []state{stateNotAuth}
	authed    = []state{stateAuth, stateSelected}
	selectedS = []state{stateSelected}
)

// commands is filled in by the files of each command group.
var commands = map[string]handler{}

func (s *session) flush() error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.idle)); err != nil {
		return err
	}
	return s.w.Flush()
}

func (s *session) greet() error {
	host := s.srv.Hostname
	if host == "" {
		h, err := s.srv.Config.Hostname()
		if err != nil {
			s.log.Warn("hostname", "err", err)
		}
		host = h
	}
	s.w.Raw("* OK [CAPABILITY " + s.capabilities() + "] " + host + " mailsrv IMAP ready\r\n")
	return s.flush()
}

func (s *session) run(ctx context.Context) error {
	s.ctx = ctx
	if err := s.greet(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		// Shutting down: unblock a read; the loop says BYE.
		_ = s.conn.SetReadDeadline(time.Now())
	})
	defer stop()
	defer s.unselect()
	for s.state != stateLogout {
		if err := s.conn.SetReadDeadline(time.Now().Add(s.idle)); err != nil {
			return err
		}
		if ctx.Err() != nil { // the deadline set by AfterFunc was just replaced
			s.w.Raw("* BYE server shutting down\r\n")
			return s.flush()
		}
		cmd, err := s.r.ReadCommand()
		if ctx.Err() != nil {
			s.w.Raw("* BYE server shutting down\r\n")
			return s.flush()
		}
		if err != nil {
			if done, err := s.readError(err); done {
				return err
			}
		} else {
			err := s.execute(cmd)
			cmd.Close()
			if err != nil {
				return err
			}
		}
		if s.bad >= s.maxBad {
			s.w.Raw("* BYE too many bad commands\r\n")
			return s.flush()
		}
	}
	return nil
}

// readError answers a command that could not be read, and says whether
// the session is over.
func (s *session) readError(err error) (bool, error) {
	var ce *wire.CommandError
	var fe *wire.FatalError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		s.bad++
		kind := "BAD"
		if ce.Code == "TOOBIG" {
			kind = "NO"
		}
		s.tagged(ce.Tag, &status{kind: kind, code: ce.Code, text: ce.Text})
		return false, s.flush()
	case errors.As(err, &fe):
		s.w.Raw("* BYE " + fe.Text + "\r\n")
		_ = s.flush()
		return true, err
	case s.ctx.Err() != nil:
		s.w.Raw("* BYE server shutting down\r\n")
		_ = s.flush()
		return true, err
	case errors.As(err, &ne) && ne.Timeout():
		s.w.Raw("* BYE idle for too long\r\n")
		_ = s.flush()
		return true, err
	}
	return true, err
}

// execute parses the tag and name of cmd and runs its handler.
func (s *session) execute(raw *wire.Command) error {
	p := wire.NewParser(raw, s.lim.MaxDepth)
	p.UTF8 = s.w.UTF8
	tag, err := p.Tag()
	if err != nil {
		s.bad++
		s.w.Raw("* BAD missing or invalid tag\r\n")
		return s.flush()
	}
	c := &command{tag: tag, p: p}
	if err := p.SP(); err == nil {
		c.name, err = p.Atom()
	}
	c.name = strings.ToUpper(c.name)
	if c.name == "UID" && p.SP() == nil {
		c.uid = true
		c.name, _ = p.Atom()
		c.name = strings.ToUpper(c.name)
		if !uidCommands[c.name] {
			c.name = "UID " + c.name
		}
	}
	h, found := commands[c.name]
	switch {
	case c.name == "":
		err = bad("missing command")
	case !found:
		err = bad("unknown command " + c.name)
	case !allowed(h.states, s.state):
		err = bad(c.name + " not allowed now")
	case s.sel != nil && s.sel.lazy && !noMessages[c.name]:
		if err = s.settle(); err == nil {
			err = h.fn(s, c)
		}
	default:
		err = h.fn(s, c)
	}
	raw.Close() // spooled literals are done with before the client hears
	return s.finish(c, err)
}

var uidCommands = map[string]bool{"FETCH": true, "STORE": true, "COPY": true, "MOVE": true,
	"SEARCH": true, "EXPUNGE": true}

func allowed(states []state, st state) bool {
	for _, x := range states {
		if x == st {
			return true
		}
	}
	return false
}

// finish sends pending mailbox updates and the tagged response.
func (s *session) finish(c *command, err error) error {
	var st *status
	var ce *connError
	if errors.As(err, &ce) {
		_, err := s.readError(ce.err)
		return err
	}
	if errors.Is(err, errAnswered) {
		s.bad = 0
		return nil
	}
	switch {
	case err == nil:
		st = &status{kind: "OK", text: c.name + " completed"}
		if c.uid {
			st.text = "UID " + st.text
		}
	case errors.As(err, &st):
	case wire.IsSyntax(err):
		st = &status{kind: "BAD", text: err.Error()}
	default:
		s.log.Error("command failed", "cmd", c.name, "err", err)
		st = &status{kind: "NO", code: "UNAVAILABLE", text: "server error, try again later"}
	}
	if st.kind == "BAD" {
		s.bad++
	} else {
		s.bad = 0
	}
	if s.state == stateSelected && st.kind != "BAD" {
		// RFC 3501 section 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH
		// (only their UID variants).
		noExpunge := !c.uid && (c.name == "FETCH" || c.name == "STORE" || c.name == "SEARCH")
		if uerr := s.update(!noExpunge); uerr != nil {
			s.log.Error("mailbox update", "err", uerr)
		}
	}
	s.tagged(c.tag, st)
	return s.flush()
}

// connError is a failure of the connection met inside a command (a
// timeout or EOF while reading IDLE's DONE or a SASL response): the
// session ends.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func (s *session) tagged(tag string, st *status) {
	s.w.Raw(tag).SP().Raw(st.kind).SP()
	if st.code != "" {
		s.w.Raw("[" + st.code + "] ")
	}
	s.w.Raw(st.text).CRLF()
}
