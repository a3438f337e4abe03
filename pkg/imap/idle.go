package imap

import (
	"strings"
	"time"
)

// IDLE (RFC 2177): changes made by other processes (deliveries, other
// sessions) are looked for every poll interval and sent at once. This is
// polling, not inotify: inotify instances are few per user, and polling
// works on NFS too.
func init() {
	commands["IDLE"] = handler{cmdIdle, authed}
}

type lineResult struct {
	line []byte
	err  error
}

func cmdIdle(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(s.idle)); err != nil {
		return err
	}
	s.w.Raw("+ idling\r\n")
	if err := s.flush(); err != nil {
		return err
	}
	done := make(chan lineResult, 1)
	go func() {
		line, err := s.r.ReadLine(64)
		done <- lineResult{line, err}
	}()
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			if res.err != nil {
				return &connError{res.err}
			}
			if !strings.EqualFold(string(res.line), "DONE") {
				return bad("expected DONE")
			}
			return nil
		case <-s.ctx.Done():
			// Shutting down: unblock the reader, whose timeout ends the
			// session with BYE.
			_ = s.conn.SetReadDeadline(time.Now())
			res := <-done
			if res.err == nil {
				res.err = s.ctx.Err()
			}
			return &connError{res.err}
		case <-tick.C:
			if s.state != stateSelected {
				continue
			}
			err := s.update(true)
			if err == nil {
				err = s.flush()
			}
			if err != nil || s.state == stateLogout {
				// Unblock the reader and wait for it before returning.
				_ = s.conn.SetReadDeadline(time.Now())
				<-done
				return err
			}
		}
	}
}
