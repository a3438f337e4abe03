package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/config"
	"mailsrv/pkg/lmtp"
)

// ReadEnvelopeOf reads the envelope of the queue file sub/ID.
func (q *Queue) ReadEnvelopeOf(sub, id string) (*Envelope, error) {
	f, err := os.Open(q.path(sub, id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadEnvelope(bufio.NewReaderSize(f, 4096))
}

// openBody opens active/ID positioned at the message, after the envelope.
func (q *Queue) openBody(id string) (io.ReadCloser, error) {
	f, err := os.Open(q.path(DirActive, id))
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 64*1024)
	if _, err := ReadEnvelope(br); err != nil {
		_ = f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, nil
}

// failure is a recipient given up on, for the bounce.
type failure struct {
	rcpt   *RcptState
	status string // enhanced status code, "5.1.1"
	diag   string // the reply that made us give up
}

// attempt delivers what is due of m, then records the outcome: it removes
// the message when nothing is left, writes its state file otherwise. It
// runs in its own goroutine and touches only m.
func (s *Scheduler) attempt(ctx context.Context, m *message) {
	now := time.Now()
	if _, err := os.Stat(s.Q.path(DirActive, m.id)); errors.Is(err, os.ErrNotExist) {
		// Removed by `queue delete` (or by hand): forget it.
		slog.Info("message gone from the queue, forgotten", "id", m.id)
		_ = os.Remove(s.Q.path(DirState, m.id))
		m.remove = true
		return
	}
	var failed []failure
	if m.rcpts == nil {
		rs, f, err := s.expand(m.env, now)
		if err != nil {
			slog.Error("alias expansion failed, will retry", "id", m.id, "err", err)
			m.retryAt = now.Add(s.Retry[0])
			return
		}
		m.rcpts, failed = rs, f
	}
	var due []*RcptState
	for _, r := range m.rcpts {
		if r.Status == StatePending && !r.Next.After(now) && !failing(failed, r) {
			due = append(due, r)
		}
	}
	if len(due) > 0 {
		failed = append(failed, s.deliverLocal(ctx, m, due, now)...)
	}
	if len(failed) > 0 {
		if err := s.bounce(ctx, m, failed); err != nil {
			slog.Error("bounce failed, will retry", "id", m.id, "err", err)
			for _, f := range failed {
				f.rcpt.Status, f.rcpt.Next = StatePending, now.Add(s.Retry[0])
				f.rcpt.LastErr = "bounce not queued: " + err.Error()
			}
			failed = nil
		}
	}
	s.record(m, failed)
}

// expand resolves the envelope recipients into final ones. An unknown local
// user fails at once (smtpd refuses those, but aliases change).
func (s *Scheduler) expand(env *Envelope, now time.Time) ([]*RcptState, []failure, error) {
	var rs []*RcptState
	var failed []failure
	seen := map[string]bool{} // one delivery per final address
	for _, rc := range env.To {
		targets, err := s.Cfg.Resolve(rc.Addr)
		if errors.Is(err, config.ErrNoSuchUser) || errors.Is(err, config.ErrAliasLoop) {
			r := &RcptState{Status: StatePending, Next: now, Addr: rc.Addr.String(), Orig: rc.Addr.String(),
				Attempts: 1, LastErr: err.Error()}
			rs = append(rs, r) // kept until its bounce is queued
			f := failure{rcpt: r, status: "5.1.1", diag: "550 5.1.1 " + err.Error()}
			if errors.Is(err, config.ErrAliasLoop) {
				f.status, f.diag = "5.4.6", "554 5.4.6 "+err.Error()
			}
			failed = append(failed, f)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for _, t := range targets {
			if seen[t.Addr.Key()] {
				continue
			}
			seen[t.Addr.Key()] = true
			r := &RcptState{Status: StatePending, Next: now, Addr: t.Addr.String(), Orig: rc.Addr.String()}
			if !t.Local() {
				r.Status = StateRemote
				r.LastErr = "held: outbound delivery is not available yet"
			}
			rs = append(rs, r)
		}
	}
	return rs, failed, nil
}

// deliverLocal hands the due recipients to the local transport and sorts
// the replies: done, again later, or given up.
func (s *Scheduler) deliverLocal(ctx context.Context, m *message, due []*RcptState, now time.Time) []failure {
	addrs := make([]string, len(due))
	for i, r := range due {
		addrs[i] = r.Addr
	}
	body, err := s.Q.openBody(m.id)
	var res []lmtp.Result
	if err == nil {
		res, err = s.Local.Send(ctx, m.env.From.String(), nil, addrs, body)
		_ = body.Close()
	}
	var failed []failure
	for i, r := range due {
		r.Attempts++
		var rerr error = err
		if err == nil {
			rerr = res[i].Err
		}
		if rerr == nil {
			r.Status = "" // delivered
			slog.Info("delivered", "id", m.id, "rcpt", r.Addr, "orig", r.Orig, "attempts", r.Attempts)
			continue
		}
		var se *smtp.SMTPError
		perm := errors.As(rerr, &se) && se.Code >= 500
		r.LastErr = rerr.Error()
		if se != nil {
			r.LastErr = fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		}
		age := now.Sub(m.env.Received)
		switch {
		case perm:
			failed = append(failed, failure{rcpt: r, status: enhanced(se, "5.0.0"), diag: r.LastErr})
			slog.Info("delivery failed", "id", m.id, "rcpt", r.Addr, "err", r.LastErr)
		case age >= s.Lifetime:
			failed = append(failed, failure{rcpt: r, status: "4.4.7",
				diag: "gave up after " + age.Round(time.Minute).String() + ": " + r.LastErr})
			slog.Info("delivery expired", "id", m.id, "rcpt", r.Addr, "err", r.LastErr)
		default:
			step := s.Retry[min(r.Attempts-1, len(s.Retry)-1)]
			r.Next = now.Add(step)
			slog.Info("delivery deferred", "id", m.id, "rcpt", r.Addr, "err", r.LastErr, "retry_in", step)
		}
	}
	return failed
}

func enhanced(se *smtp.SMTPError, def string) string {
	if se == nil || se.EnhancedCode[0] == 0 {
		return def
	}
	return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
}

// record writes what is left of m: the message is removed when no
// recipient remains, its state file rewritten otherwise. The queue file is
// removed before its state, so a crash in between leaves a state file
// without a message, which recover() deletes: never the reverse, which would
// deliver again to recipients already done.
func (s *Scheduler) record(m *message, failed []failure) {
	gone := map[*RcptState]bool{}
	for _, f := range failed {
		gone[f.rcpt] = true
	}
	var left []*RcptState
	for _, r := range m.rcpts {
		if r.Status != "" && !gone[r] {
			left = append(left, r)
		}
	}
	m.rcpts = left
	if len(left) == 0 {
		if err := os.Remove(s.Q.path(DirActive, m.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			slog.Error("remove done message", "id", m.id, "err", err)
		}
		_ = os.Remove(s.Q.path(DirState, m.id))
		m.remove = true
		return
	}
	if err := s.Q.writeState(m.id, left); err != nil {
		// The next attempt redoes what this one did: duplicates, no loss.
		slog.Error("write state", "id", m.id, "err", err)
	}
}

func failing(failed []failure, r *RcptState) bool {
	for _, f := range failed {
		if f.rcpt == r {
			return true
		}
	}
	return false
}
