package pop3

import (
	"errors"
	"os"
	"strconv"
)

// Commands of the TRANSACTION state (RFC 1939 section 5, RFC 1939
// section 7 for TOP and UIDL).

// message returns the message numbered by arg, which must exist and not be
// marked deleted.
func (s *session) message(arg string) (int, *Message, *Error) {
	n, ok := ParseMsgNum(arg)
	if !ok {
		return 0, nil, &Error{Msg: "invalid message number"}
	}
	if n > len(s.box.Msgs) {
		return 0, nil, &Error{Msg: "no such message"}
	}
	m := s.box.Msgs[n-1]
	if m.Deleted {
		return 0, nil, &Error{Msg: "message " + arg + " already deleted"}
	}
	return n, m, nil
}

// oneMessage parses the argument of a command taking exactly one message
// number, answering the client itself on error.
func (s *session) oneMessage(cmd Command) (int, *Message, bool) {
	if len(cmd.Args) != 1 {
		s.bad(cmd.Name + " takes one message number")
		return 0, nil, false
	}
	n, m, e := s.message(cmd.Args[0])
	if e != nil {
		s.fail(e)
		return 0, nil, false
	}
	return n, m, true
}

func (s *session) live() (count int, size int64) {
	for _, m := range s.box.Msgs {
		if !m.Deleted {
			count++
			size += m.Size
		}
	}
	return count, size
}

func (s *session) cmdSTAT(Command) {
	n, size := s.live()
	writeOK(s.w, strconv.Itoa(n)+" "+strconv.FormatInt(size, 10))
}

func (s *session) cmdNOOP(Command) { writeOK(s.w, "") }

// listing answers LIST and UIDL: one message with an argument, all of
// those not deleted without one.
func (s *session) listing(cmd Command, value func(*Message) string) {
	if len(cmd.Args) > 1 {
		s.bad(cmd.Name + " takes at most one message number")
		return
	}
	if len(cmd.Args) == 1 {
		n, m, e := s.message(cmd.Args[0])
		if e != nil {
			s.fail(e)
			return
		}
		writeOK(s.w, strconv.Itoa(n)+" "+value(m))
		return
	}
	writeOK(s.w, "")
	buf := make([]byte, 0, 128)
	for i, m := range s.box.Msgs {
		if m.Deleted {
			continue
		}
		buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
		buf = append(buf, ' ')
		buf = append(buf, value(m)...)
		buf = append(buf, '\r', '\n')
		s.w.Write(buf)
	}
	s.w.WriteString(".\r\n")
}

func (s *session) cmdLIST(cmd Command) {
	s.listing(cmd, func(m *Message) string { return strconv.FormatInt(m.Size, 10) })
}

func (s *session) cmdUIDL(cmd Command) {
	s.listing(cmd, func(m *Message) string { return m.UID })
}

func (s *session) cmdRETR(cmd Command) {
	_, m, ok := s.oneMessage(cmd)
	if ok && s.send(m, -1) {
		m.Retrieved = true
		s.retrieved++
	}
}

func (s *session) cmdTOP(cmd Command) {
	if len(cmd.Args) != 2 {
		s.bad("TOP takes a message number and a number of lines")
		return
	}
	lines, err := strconv.Atoi(cmd.Args[1])
	if err != nil || lines < 0 {
		s.fail(&Error{Msg: "invalid number of lines"})
		return
	}
	_, m, e := s.message(cmd.Args[0])
	if e != nil {
		s.fail(e)
		return
	}
	s.send(m, lines)
}

// send writes message m (or its top, bodyLines >= 0) as a multi-line reply.
// A message that another session expunged since the snapshot gets -ERR; a
// failure after "+OK" went out cannot be reported in the protocol, so it
// ends the session.
func (s *session) send(m *Message, bodyLines int) bool {
	f, err := s.box.Open(m)
	if errors.Is(err, os.ErrNotExist) {
		s.fail(&Error{Msg: "message was removed by another session"})
		return false
	}
	if err != nil {
		s.log.Error("open message", "name", m.Name, "err", err)
		s.fail(&Error{Code: CodeSysTemp, Msg: "cannot read message"})
		return false
	}
	writeOK(s.w, "message follows")
	err = WriteMessage(s.w, f, bodyLines)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.log.Error("sending message", "name", m.Name, "err", err)
		s.state = stateDone
		return false
	}
	return true
}

func (s *session) cmdDELE(cmd Command) {
	n, m, ok := s.oneMessage(cmd)
	if ok {
		m.Deleted = true
		writeOK(s.w, "message "+strconv.Itoa(n)+" deleted")
	}
}

// cmdRSET unmarks the deleted messages. Messages retrieved stay marked to
// become \Seen: they were sent.
func (s *session) cmdRSET(Command) {
	for _, m := range s.box.Msgs {
		m.Deleted = false
	}
	n, size := s.live()
	writeOK(s.w, strconv.Itoa(n)+" messages ("+strconv.FormatInt(size, 10)+" octets)")
}
