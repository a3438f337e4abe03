package imap

import (
	"strings"
	"time"
)

// IDLE (RFC 2177): changes made by other processes (deliveries, other
// sessions) are sent at once. inotify (watch.go) says when the folder may
// have changed; a burst of events makes one rescan, and rescans are at
// least idleMinGap apart, so that 500 deliveries cost a few rescans, not
// 500. Polling stays: every Server.PollInterval where inotify cannot be
// used, and every Server.WatchPollInterval beside it (NFS: another host's
// changes raise no event here).
func init() {
	commands["IDLE"] = handler{cmdIdle, authed}
}

const (
	// idleSettle gathers the events of one change (a rename is two) and
	// of a burst that has begun before the rescan.
	idleSettle = 10 * time.Millisecond
	// idleMinGap is the least time between two rescans made for events.
	idleMinGap = 100 * time.Millisecond
)

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
	// The watch begins before the continuation: what the client does
	// after it (or asks another process to do) raises an event.
	fw := s.idleWatch()
	defer fw.close()
	s.w.Raw("+ idling\r\n")
	if err := s.flush(); err != nil {
		return err
	}
	done := make(chan lineResult, 1)
	go func() {
		line, err := s.r.ReadLine(64)
		done <- lineResult{line, err}
	}()
	return s.idleLoop(fw, done)
}

// idleWatch subscribes to the selected folder's changes; nil means poll.
func (s *session) idleWatch() *folderWatch {
	if s.state != stateSelected || s.srv.NoWatch {
		return nil
	}
	fw, err := s.srv.hub.watch(s.sel.folder.Dir)
	if err != nil {
		s.log.Warn("IDLE: no inotify, polling", "err", err, "poll", s.poll)
		return nil
	}
	return fw
}

// idleLoop reports changes until the client's DONE (or the connection's
// end, or shutdown); the reader of done has ended when it returns.
func (s *session) idleLoop(fw *folderWatch, done chan lineResult) error {
	sync := func() error {
		err := s.idleSync()
		if err != nil || s.state == stateLogout {
			// Unblock the reader and wait for it before returning.
			_ = s.conn.SetReadDeadline(time.Now())
			<-done
		}
		return err
	}
	interval := s.poll
	var kick chan struct{}
	if fw != nil {
		interval, kick = s.watchPoll, fw.kick
		// Changes since the last command, before the watch began.
		if err := sync(); err != nil || s.state == stateLogout {
			return err
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var last time.Time // the last rescan
	var pending bool   // settle is running
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
		case <-kick:
			if !pending {
				pending = true
				settle.Reset(max(idleSettle, time.Until(last.Add(idleMinGap))))
			}
			continue
		case <-settle.C:
			pending = false
		case <-tick.C:
		}
		last = time.Now()
		if err := sync(); err != nil || s.state == stateLogout {
			return err
		}
	}
}

// idleSync sends what changed in the selected folder.
func (s *session) idleSync() error {
	if s.state != stateSelected {
		return nil
	}
	if s.srv.idleHook != nil {
		s.srv.idleHook()
	}
	err := s.update(true)
	if err == nil {
		err = s.flush()
	}
	return err
}
