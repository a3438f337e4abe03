package deliver

import (
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"mailsrv/pkg/config"
	"mailsrv/pkg/mailstore"
)

// ExitCantCreat is sysexits.h's EX_CANTCREAT, "can't create (user) output
// file": the exit code of a delivery refused because the mailbox is full.
// Postfix's pipe transport takes it as permanent (5.2.0), as the queue
// takes the LMTP reply 552 5.2.2 that goes with it;
// --quota-tempfail turns the refusal into ExitTempFail.
const ExitCantCreat = 73

// Quota (Maildir++, see mailstore/maildirsize.go): a user whose line in
// etc/users has quota=SIZE may not receive a message that would take the
// mailbox over SIZE bytes, counted as IMAP counts them (CRLF line endings).
// The refusal is permanent by default (552 5.2.2, RFC 3463 "mailbox full":
// the sender learns at once that the mail did not arrive) or temporary
// with QuotaTempFail (452 4.2.2: the queue retries until the user makes
// room or the message expires).

// EnvQuotaTempFail, set to a true value ("1", "true") in the environment
// of deliver or queue run, has the effect of deliver --quota-tempfail, for
// the delivery agents that queue run starts or is (and for smtpd's early
// refusal).
const EnvQuotaTempFail = mailstore.EnvQuotaTempFail

// QuotaTempFailFromEnv reads EnvQuotaTempFail.
func QuotaTempFailFromEnv() bool { return mailstore.QuotaTempFailFromEnv() }

// quotaStore returns the user's store when it has a quota, after checking
// that size more bytes fit; nil when the user has no quota.
func (d *Deliverer) quotaStore(u config.User, dir string, size int64) (*mailstore.Store, error) {
	q, ok := u.Attrs["quota"]
	if !ok {
		return nil, nil
	}
	limit, err := mailstore.ParseQuota(q)
	if err != nil { // the administrator's mistake: keep the mail until it is fixed
		return nil, tempErr(err)
	}
	store := &mailstore.Store{Root: dir}
	use, err := store.Quota(limit, size)
	if err != nil {
		return nil, tempErr(err)
	}
	if use.Over(size) {
		return nil, d.mailboxFull(u.Addr.String())
	}
	return store, nil
}

func (d *Deliverer) mailboxFull(addr string) *Error {
	if d.QuotaTempFail {
		return &Error{Temporary: true, Code: 452, Status: "4.2.2", Msg: "mailbox full: " + addr, Exit: ExitTempFail}
	}
	return &Error{Code: 552, Status: "5.2.2", Msg: "mailbox full: " + addr, Exit: ExitCantCreat}
}

// noteDelivery appends the delivered file's size to maildirsize. The
// message is delivered: a failure here is only logged, and the next
// rebuild corrects the count.
func noteDelivery(store *mailstore.Store, path string) {
	size, ok := crlfSizeOf(path)
	if !ok {
		return
	}
	if err := store.AddQuota(size, 1); err != nil {
		slog.Warn("maildirsize not updated", "err", err)
	}
}

// crlfSizeOf reads the ,W= size from a delivered file's name.
func crlfSizeOf(path string) (int64, bool) {
	base := filepath.Base(path)
	i := strings.LastIndex(base, ",W=")
	if i < 0 {
		return 0, false
	}
	digits := base[i+3:]
	if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
		digits = digits[:j]
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// crlfSize is the size of msg (LF line endings) with its delivery header,
// as IMAP counts it.
func crlfSize(hdr string, msg []byte) int64 {
	n := int64(len(hdr) + strings.Count(hdr, "\n") + len(msg))
	for _, c := range msg {
		if c == '\n' {
			n++
		}
	}
	return n
}
