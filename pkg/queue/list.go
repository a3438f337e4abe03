package queue

import (
	"errors"
	"os"
	"sort"
	"time"
)

// Entry is one recipient of one queued message, as `queue list` shows it.
type Entry struct {
	ID       string
	Age      time.Duration
	From     string
	Rcpt     string // final recipient, or the envelope one before expansion
	Orig     string
	State    string // "new" (not yet tried), "pending", "remote"
	Attempts int
	Next     time.Time
	LastErr  string
}

// List reads the queue without disturbing a running scheduler: messages in
// incoming/ and active/, each with its state file when it has one.
func (q *Queue) List() ([]Entry, error) {
	var out []Entry
	now := time.Now()
	for _, sub := range []string{DirActive, DirIncoming} {
		ents, err := os.ReadDir(q.path(sub, ""))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			id := e.Name()
			if !validID(id) {
				continue
			}
			env, err := q.ReadEnvelopeOf(sub, id)
			if errors.Is(err, os.ErrNotExist) { // delivered or moved meanwhile
				env, err = q.ReadEnvelopeOf(DirActive, id)
			}
			if err != nil {
				continue
			}
			out = append(out, q.entries(id, env, now)...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (q *Queue) entries(id string, env *Envelope, now time.Time) []Entry {
	base := Entry{ID: id, Age: now.Sub(env.Received), From: env.From.String()}
	rs, err := q.readState(id)
	if err != nil || rs == nil {
		var out []Entry
		for _, r := range env.To {
			e := base
			e.Rcpt, e.State = r.Addr.String(), "new"
			out = append(out, e)
		}
		return out
	}
	out := make([]Entry, 0, len(rs))
	for _, r := range rs {
		e := base
		e.Rcpt, e.Orig, e.State, e.Attempts, e.LastErr = r.Addr, r.Orig, r.Status, r.Attempts, r.LastErr
		if r.Status == StatePending {
			e.Next = r.Next
		}
		out = append(out, e)
	}
	return out
}
