package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/safefile"
)

// StateMagic is the first line of a state file.
const StateMagic = "mailsrv-state 1"

// Recipient states in a state file.
const (
	StatePending = "pending" // a local delivery to try (again) at Next
	StateRemote  = "remote"  // held: outbound delivery is not built yet
)

// RcptState is the scheduler's record of one final recipient of a message.
type RcptState struct {
	Status   string
	Attempts int
	Next     time.Time
	Addr     string // final address (after aliases)
	Orig     string // the envelope recipient it came from
	LastErr  string
}

// writeState replaces state/ID with the recipients still to do.
func (q *Queue) writeState(id string, rs []*RcptState) error {
	var b bytes.Buffer
	b.WriteString(StateMagic + "\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "rcpt\t%s\t%d\t%d\t%s\t%s\t%s\n", r.Status, r.Attempts, r.Next.Unix(),
			r.Addr, r.Orig, clean(strings.ReplaceAll(r.LastErr, "\t", " ")))
	}
	return safefile.WriteFile(q.path(DirState, id), b.Bytes(), 0640)
}

// readState reads state/ID. A missing file gives (nil, nil): the message has
// not been attempted yet, and every envelope recipient is still to do.
func (q *Queue) readState(id string) ([]*RcptState, error) {
	data, err := os.ReadFile(q.path(DirState, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseState(data)
}

func parseState(data []byte) ([]*RcptState, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64*1024)
	if !sc.Scan() || sc.Text() != StateMagic {
		return nil, fmt.Errorf("%w: state file without %q", ErrFormat, StateMagic)
	}
	var rs []*RcptState
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 7 || f[0] != "rcpt" {
			return nil, fmt.Errorf("%w: state line %q", ErrFormat, sc.Text())
		}
		att, err1 := strconv.Atoi(f[2])
		next, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || (f[1] != StatePending && f[1] != StateRemote) {
			return nil, fmt.Errorf("%w: state line %q", ErrFormat, sc.Text())
		}
		rs = append(rs, &RcptState{Status: f[1], Attempts: att, Next: time.Unix(next, 0),
			Addr: f[4], Orig: f[5], LastErr: f[6]})
	}
	return rs, sc.Err()
}
