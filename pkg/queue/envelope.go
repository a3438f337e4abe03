package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"mailsrv/pkg/address"
)

// Magic is the first line of every queue file; the number is the format's
// version, raised when a reader of an older version could misread a file.
const Magic = "mailsrv-queue 1"

// MaxEnvelope bounds the envelope part of a queue file.
const MaxEnvelope = 1 << 20

// Envelope is what travels beside a message: who sent it, to whom, and how
// it arrived. It is written at the head of each queue file as "key value"
// lines (see mailsrv-queue(5)); keys this version does not know are kept in
// Extra and written back, so a newer writer's fields survive an older
// reader.
type Envelope struct {
	From     address.Address // zero value: the null sender <>, as in a bounce
	To       []Recipient
	Received time.Time // when the queue accepted the message
	Client   string    // remote IP address, "" if local
	Helo     string    // the client's EHLO/HELO name
	Auth     string    // authenticated user, if any
	Proto    string    // "ESMTP", "ESMTPS", "ESMTPA", "local", ...
	Extra    []string  // unknown "key value" lines, kept as they were
}

// Recipient is one envelope recipient.
type Recipient struct {
	Addr address.Address
	// Orig is the address as the client gave it (RFC 3461 ORCPT), when it
	// differs from Addr.
	Orig string
}

// ErrFormat is returned for a queue file that is not in our format.
var ErrFormat = errors.New("queue file format")

// WriteTo writes the envelope part of a queue file, ending with the empty
// line that separates it from the message.
func (e *Envelope) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	b.WriteString(Magic + "\n")
	b.WriteString("from " + e.From.String() + "\n")
	for _, r := range e.To {
		b.WriteString("to " + r.Addr.String())
		if r.Orig != "" {
			b.WriteString("\torcpt=" + r.Orig)
		}
		b.WriteByte('\n')
	}
	if !e.Received.IsZero() {
		b.WriteString("received " + e.Received.UTC().Format(time.RFC3339Nano) + "\n")
	}
	for _, kv := range [][2]string{{"client", e.Client}, {"helo", e.Helo}, {"auth", e.Auth}, {"proto", e.Proto}} {
		if kv[1] != "" {
			b.WriteString(kv[0] + " " + clean(kv[1]) + "\n")
		}
	}
	for _, x := range e.Extra {
		b.WriteString(x + "\n")
	}
	b.WriteByte('\n')
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// clean keeps a free-text field on one line.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 32 || r == 127 {
			return '?'
		}
		return r
	}, s)
}

// ReadEnvelope reads the envelope part of a queue file from r, leaving r at
// the first byte of the message.
func ReadEnvelope(r *bufio.Reader) (*Envelope, error) {
	var e Envelope
	total := 0
	first := true
	for {
		line, err := r.ReadString('\n')
		total += len(line)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: envelope not terminated", ErrFormat)
			}
			return nil, err
		}
		if total > MaxEnvelope {
			return nil, fmt.Errorf("%w: envelope too large", ErrFormat)
		}
		line = strings.TrimSuffix(line, "\n")
		if first {
			if line != Magic {
				return nil, fmt.Errorf("%w: bad first line %.40q", ErrFormat, line)
			}
			first = false
			continue
		}
		if line == "" {
			break
		}
		if err := e.parseLine(line); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
	}
	if len(e.To) == 0 {
		return nil, fmt.Errorf("%w: no recipients", ErrFormat)
	}
	return &e, nil
}

func (e *Envelope) parseLine(line string) error {
	key, val, _ := strings.Cut(line, " ")
	switch key {
	case "from":
		if val == "" {
			e.From = address.Address{}
			return nil
		}
		a, err := address.Parse(val)
		if err != nil {
			return fmt.Errorf("from %q: %w", val, err)
		}
		e.From = a
	case "to":
		addr, params, _ := strings.Cut(val, "\t")
		a, err := address.Parse(addr)
		if err != nil {
			return fmt.Errorf("to %q: %w", addr, err)
		}
		rc := Recipient{Addr: a}
		for _, p := range strings.Split(params, "\t") {
			if o, ok := strings.CutPrefix(p, "orcpt="); ok {
				rc.Orig = o
			}
		}
		e.To = append(e.To, rc)
	case "received":
		t, err := time.Parse(time.RFC3339Nano, val)
		if err != nil {
			return fmt.Errorf("received %q: %w", val, err)
		}
		e.Received = t
	case "client":
		e.Client = val
	case "helo":
		e.Helo = val
	case "auth":
		e.Auth = val
	case "proto":
		e.Proto = val
	default:
		if key == "" {
			return fmt.Errorf("empty key")
		}
		e.Extra = append(e.Extra, line)
	}
	return nil
}

// ReadQmailEnvelope reads the envelope in qmail-queue's format (qmail-queue
// (8)): "F" sender NUL, then "T" recipient NUL for each recipient, then a
// final NUL.
func ReadQmailEnvelope(r io.Reader, env *Envelope) error {
	br := bufio.NewReader(io.LimitReader(r, MaxEnvelope))
	first := true
	for {
		field, err := br.ReadString(0)
		if err != nil {
			return fmt.Errorf("%w: envelope not terminated", ErrFormat)
		}
		field = strings.TrimSuffix(field, "\x00")
		switch {
		case field == "" && !first:
			if len(env.To) == 0 {
				return fmt.Errorf("%w: no recipients", ErrFormat)
			}
			return nil
		case first && strings.HasPrefix(field, "F"):
			if field != "F" {
				a, err := address.Parse(field[1:])
				if err != nil {
					return fmt.Errorf("sender: %w", err)
				}
				env.From = a
			}
		case !first && strings.HasPrefix(field, "T"):
			a, err := address.Parse(field[1:])
			if err != nil {
				return fmt.Errorf("recipient %q: %w", field[1:], err)
			}
			env.To = append(env.To, Recipient{Addr: a})
		default:
			return fmt.Errorf("%w: unexpected envelope field %.40q", ErrFormat, field)
		}
		first = false
	}
}
