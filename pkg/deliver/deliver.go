// Package deliver is the mail delivery agent behind the deliver program: it
// puts one message into a local user's Maildir (through pkg/maildir's
// durable write), adding Return-Path and Delivered-To, refusing loops, and
// following the user's aliases when asked to. It serves the one-shot mode
// (a message on stdin, for fetchmail, procmail or Postfix's pipe) and the
// LMTP mode that `queue run` keeps running.
package deliver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
	"mailsrv/pkg/lineend"
	"mailsrv/pkg/maildir"
	"mailsrv/pkg/queue"
)

// DefaultMaxSize is the largest message deliver takes unless told
// otherwise.
const DefaultMaxSize = 64 << 20

// MaxHops is the most Received headers a message may carry (RFC 5321
// section 6.3 asks for a limit; 100 is the common one).
const MaxHops = 100

// Exit codes from sysexits.h, which fetchmail, procmail and Postfix's pipe
// transport understand.
const (
	ExitOK       = 0
	ExitUsage    = 64
	ExitDataErr  = 65
	ExitNoUser   = 67
	ExitSoftware = 70
	ExitTempFail = 75
)

// Error is a failed delivery, with how to report it in SMTP/LMTP and as an
// exit code.
type Error struct {
	Temporary bool
	Code      int    // SMTP reply code
	Status    string // enhanced status code, "5.1.1"
	Msg       string
	Exit      int
}

func (e *Error) Error() string { return e.Msg }

func tempErr(err error) *Error {
	return &Error{Temporary: true, Code: 451, Status: "4.3.0", Msg: err.Error(), Exit: ExitTempFail}
}

// ErrorOf classifies any error as an *Error; unknown errors are temporary.
func ErrorOf(err error) *Error {
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	return tempErr(err)
}

// Deliverer delivers for one root.
type Deliverer struct {
	Cfg *config.Config
	// Forward queues a message for addresses that are not local mailboxes
	// (an alias pointing elsewhere), in the one-shot -d mode.
	Forward queue.Injector
	// QuotaTempFail makes a full mailbox a temporary failure (quota.go).
	QuotaTempFail bool
}

// ToUser delivers msg (LF line endings) to the local user that addr names,
// without alias expansion: the queue has already expanded it.
func (d *Deliverer) ToUser(addr address.Address, sender string, msg []byte) (string, error) {
	u, ok, err := d.Cfg.LocalUser(addr)
	if err != nil {
		return "", tempErr(err)
	}
	if !ok {
		return "", &Error{Code: 550, Status: "5.1.1", Msg: "no such user: " + addr.String(), Exit: ExitNoUser}
	}
	dir := d.Cfg.Mailbox(u)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := maildir.Create(dir); err != nil {
			return "", tempErr(err)
		}
	}
	store, err := d.quotaStore(u, dir, crlfSize(deliveryHeader(sender, addr.String()), msg))
	if err != nil {
		return "", err
	}
	path, err := ToMaildir(dir, sender, addr.String(), msg)
	if err == nil && store != nil {
		noteDelivery(store, path)
	}
	return path, err
}

// ToAddress delivers msg to an address as the queue would: through aliases,
// sub-addresses and catch-alls, local targets into their Maildirs, the rest
// handed to Forward. Used by `deliver -d`.
func (d *Deliverer) ToAddress(ctx context.Context, addr address.Address, sender string, msg []byte) error {
	targets, err := d.Cfg.Resolve(addr)
	if errors.Is(err, config.ErrNoSuchUser) {
		return &Error{Code: 550, Status: "5.1.1", Msg: err.Error(), Exit: ExitNoUser}
	}
	if err != nil {
		return tempErr(err)
	}
	var remote []queue.Recipient
	for _, t := range targets {
		if !t.Local() {
			remote = append(remote, queue.Recipient{Addr: t.Addr})
			continue
		}
		if _, err := d.ToUser(t.Addr, sender, msg); err != nil {
			return err
		}
	}
	if len(remote) == 0 {
		return nil
	}
	if d.Forward == nil {
		return &Error{Temporary: true, Code: 451, Status: "4.3.5", Msg: "no queue to forward to", Exit: ExitTempFail}
	}
	from, _ := address.Parse(sender) // an unparsable sender forwards as <>
	env := &queue.Envelope{From: from, To: remote, Proto: "forward"}
	if _, err := d.Forward.Inject(ctx, env, bytes.NewReader(msg)); err != nil {
		if queue.IsTemporary(err) {
			return tempErr(err)
		}
		return &Error{Code: 554, Status: "5.3.0", Msg: err.Error(), Exit: ExitDataErr}
	}
	return nil
}

// ToMaildir delivers msg into the Maildir dir with Return-Path and, when
// rcpt is set, Delivered-To headers on top, after checking for a loop. It
// returns the path of the new file.
func ToMaildir(dir, sender, rcpt string, msg []byte) (string, error) {
	if err := checkLoop(msg, rcpt); err != nil {
		return "", err
	}
	path, err := maildir.Deliver(dir, []byte(deliveryHeader(sender, rcpt)), bytes.NewReader(msg))
	if err != nil {
		return "", tempErr(err)
	}
	return path, nil
}

// deliveryHeader is what ToMaildir puts on top of a message.
func deliveryHeader(sender, rcpt string) string {
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "Return-Path: <%s>\n", sender)
	if rcpt != "" {
		fmt.Fprintf(&hdr, "Delivered-To: %s\n", rcpt)
	}
	return hdr.String()
}

// checkLoop refuses a message that already went through this mailbox (a
// Delivered-To header for rcpt, as qmail and Postfix check) or through too
// many hosts.
func checkLoop(msg []byte, rcpt string) error {
	hops := 0
	sc := bufio.NewScanner(bytes.NewReader(msg))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "received":
			hops++
		case "delivered-to":
			if rcpt != "" && strings.EqualFold(strings.TrimSpace(val), rcpt) {
				return &Error{Code: 554, Status: "5.4.6", Msg: "mail forwarding loop for " + rcpt, Exit: ExitDataErr}
			}
		}
	}
	if hops > MaxHops {
		return &Error{Code: 554, Status: "5.4.6", Msg: fmt.Sprintf("too many hops (%d Received headers)", hops), Exit: ExitDataErr}
	}
	return nil
}

// ReadMessage reads a whole message, turning CRLF into LF, up to max bytes
// (0: no limit).
func ReadMessage(r io.Reader, max int64) ([]byte, error) {
	var lim io.Reader = r
	if max > 0 {
		lim = io.LimitReader(r, max+1)
	}
	var b bytes.Buffer
	lf := &lineend.LFWriter{W: &b}
	n, err := io.Copy(lf, lim)
	if err == nil {
		err = lf.Flush()
	}
	if err != nil {
		return nil, err
	}
	if max > 0 && n > max {
		return nil, &Error{Code: 552, Status: "5.3.4", Msg: "message too big", Exit: ExitDataErr}
	}
	return b.Bytes(), nil
}
