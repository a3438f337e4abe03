package deliver

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/lmtp"
)

// Transport delivers in the calling process: what `queue run` uses when it
// already is the owner of the mailboxes (a single-user installation, make
// run), so that no deliver child sits between the queue and the Maildir.
// It gives the same answers as the LMTP worker, recipient by recipient.
type Transport struct {
	D       *Deliverer
	MaxSize int64
}

// Send implements queue.Transport. The queue stores LF line endings, so the
// body is taken as it is.
func (t Transport) Send(_ context.Context, from string, _ *smtp.MailOptions, rcpts []string, body io.Reader) ([]lmtp.Result, error) {
	var lim io.Reader = body
	if t.MaxSize > 0 {
		lim = io.LimitReader(body, t.MaxSize+1)
	}
	msg, err := io.ReadAll(lim)
	if err != nil {
		return nil, err
	}
	res := make([]lmtp.Result, len(rcpts))
	for i, r := range rcpts {
		res[i].Rcpt = r
		switch a, perr := address.Parse(r); {
		case perr != nil:
			res[i].Err = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "bad recipient address"}
		case t.MaxSize > 0 && int64(len(msg)) > t.MaxSize:
			res[i].Err = toSMTP(&Error{Code: 552, Status: "5.3.4", Msg: "message too big", Exit: ExitDataErr})
		default:
			_, derr := t.D.ToUser(a, from, msg)
			res[i].Err = toSMTP(derr)
		}
	}
	return res, nil
}

// OwnsMailboxes reports whether this process runs as the owner of the
// mailbox tree ROOT/mail, and so may deliver itself.
func OwnsMailboxes(mailDir string) (bool, error) {
	fi, err := os.Stat(mailDir)
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, errors.New("no owner information")
	}
	return int(st.Uid) == os.Geteuid(), nil
}
