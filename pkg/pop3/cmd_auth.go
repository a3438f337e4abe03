package pop3

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailsrv/pkg/maildir"
)

// LoginFile is the file whose mtime records a mailbox's last POP3 login,
// for LOGIN-DELAY.
const LoginFile = "pop3.login"

// cmdCAPA lists the capabilities (RFC 2449 section 5). USER and the
// plain-text SASL mechanisms are shown only where they are allowed; STLS
// only before TLS.
func (s *session) cmdCAPA(Command) {
	writeOK(s.w, "capability list follows")
	for _, c := range []string{"CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		s.w.WriteString(c + "\r\n")
	}
	if s.state == stateAuthorization {
		if s.plaintextAllowed() {
			s.w.WriteString("USER\r\n")
		}
		if mechs := s.sasl.Mechanisms(); len(mechs) > 0 {
			s.w.WriteString("SASL " + strings.Join(mechs, " ") + "\r\n")
		}
	}
	if s.state == stateAuthorization && s.srv.TLSConfig != nil && !s.secure {
		s.w.WriteString("STLS\r\n")
	}
	if s.srv.Expire != "" {
		s.w.WriteString("EXPIRE " + s.srv.Expire + "\r\n")
	}
	if d := s.srv.LoginDelay; d > 0 {
		s.w.WriteString("LOGIN-DELAY " + strconv.Itoa(int(d/time.Second)) + "\r\n")
	}
	impl := s.srv.Implementation
	if impl == "" {
		impl = "mailsrv-pop3d"
	}
	s.w.WriteString("IMPLEMENTATION " + impl + "\r\n.\r\n")
}

// cmdQUIT ends the session; in the TRANSACTION state it first enters the
// UPDATE state (RFC 1939 section 6).
func (s *session) cmdQUIT(Command) {
	s.state = stateDone
	if s.box == nil {
		writeOK(s.w, "bye")
		return
	}
	deleted, err := s.box.Commit()
	// Unlock before answering, so that a client that logs in again as soon
	// as it reads the reply finds the mailbox free.
	s.releaseLock()
	if err != nil {
		s.lastUpdate = "failed"
		s.log.Error("update failed", "user", s.account.Addr.Key(), "deleted", deleted, "err", err)
		s.fail(&Error{Code: CodeSysTemp, Msg: "some deleted messages not removed"})
		return
	}
	s.lastUpdate = "ok, " + strconv.Itoa(deleted) + " deleted"
	writeOK(s.w, "bye, "+strconv.Itoa(deleted)+" messages deleted")
}

// cmdSTLS starts TLS (RFC 2595 section 4). The hook is Server.TLSConfig.
func (s *session) cmdSTLS(Command) {
	if s.srv.TLSConfig == nil || s.secure {
		s.fail(&Error{Msg: "STLS not available"})
		return
	}
	if s.r.Buffered() > 0 {
		// Commands pipelined after STLS would cross the TLS boundary in
		// the clear (the STARTTLS injection flaw): refuse.
		s.fail(&Error{Msg: "STLS must be the last command in its batch"})
		s.state = stateDone
		return
	}
	writeOK(s.w, "begin TLS negotiation")
	if s.flush() != nil {
		return
	}
	tc := tls.Server(s.conn, s.srv.TLSConfig)
	_ = tc.SetDeadline(time.Now().Add(s.srv.idle()))
	if err := tc.Handshake(); err != nil {
		s.log.Info("TLS handshake failed", "err", err)
		s.state = stateDone
		return
	}
	s.conn, s.secure, s.user = tc, true, ""
	s.sasl.TLS = true
	s.r = bufio.NewReaderSize(tc, 4096)
	s.w = bufio.NewWriterSize(deadlineWriter{tc, s.srv.idle()}, 64*1024)
}

// openMailbox locks the user's Maildir, enforces LOGIN-DELAY and takes the
// snapshot.
func (s *session) openMailbox(dir string) *Error {
	if err := createMailbox(dir); err != nil {
		s.log.Error("maildir", "dir", dir, "err", err)
		return &Error{Code: sysCode(err), Msg: "mailbox not available"}
	}
	lock, err := Lock(dir)
	if errors.Is(err, ErrInUse) {
		return &Error{Code: CodeInUse, Msg: "mailbox in use by another POP3 session"}
	}
	if err != nil {
		s.log.Error("lock", "dir", dir, "err", err)
		return &Error{Code: sysCode(err), Msg: "cannot lock mailbox"}
	}
	if e := s.checkLoginDelay(dir, lock); e != nil {
		s.unlock(lock)
		return e
	}
	box, err := OpenMailbox(dir)
	if err != nil {
		s.unlock(lock)
		s.log.Error("snapshot", "dir", dir, "err", err)
		return &Error{Code: sysCode(err), Msg: "cannot read mailbox"}
	}
	s.box, s.lock = box, lock
	return nil
}

// sysCode tells a fault that needs the administrator (RFC 3206 section 4:
// SYS/PERM, a mailbox that is not a directory or not ours to read) from one
// that may pass by itself (SYS/TEMP: a full disk, an I/O error).
func sysCode(err error) string {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) {
		return CodeSysPerm
	}
	return CodeSysTemp
}

// createMailbox makes a user's mailbox on first use, with the special
// folders that imapd expects (it creates them only when INBOX is missing).
func createMailbox(dir string) error {
	_, err := os.Stat(filepath.Join(dir, "cur"))
	if errors.Is(err, os.ErrNotExist) {
		return maildir.Create(dir)
	}
	return err
}

func (s *session) unlock(l *MailboxLock) {
	if err := l.Unlock(); err != nil {
		s.log.Warn("unlock failed", "err", err)
	}
}

// checkLoginDelay refuses a login that comes sooner than LoginDelay after
// the last one (RFC 2449 section 8.1.1), comparing the filesystem's own
// times (the lock was just written), and records this login.
func (s *session) checkLoginDelay(dir string, lock *MailboxLock) *Error {
	if s.srv.LoginDelay <= 0 {
		return nil
	}
	now, err := lock.Modified()
	if err != nil {
		return &Error{Code: CodeSysTemp, Msg: "cannot check login delay"}
	}
	path := filepath.Join(dir, LoginFile)
	if fi, err := os.Stat(path); err == nil && now.Sub(fi.ModTime()) < s.srv.LoginDelay {
		return &Error{Code: CodeLoginDelay, Msg: "minimum time between logins not yet passed"}
	}
	// Writing the file sets its mtime by the filesystem's clock.
	stamp := []byte(strconv.FormatInt(time.Now().Unix(), 10) + "\n")
	if err := os.WriteFile(path, stamp, 0600); err != nil {
		s.log.Error("login delay", "err", err)
		return &Error{Code: CodeSysTemp, Msg: "cannot record login"}
	}
	return nil
}
