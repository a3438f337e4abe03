package smtpd

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-smtp"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
)

// Senders of authenticated clients (RFC 6409 section 6.1, on any port).
// An authenticated user may send as:
//
//   - its own address, with or without a +tag;
//   - an address of a local domain that resolves through etc/aliases to
//     the user's mailbox (among its targets: a member may send as a
//     list, the owner of a catch-all as any address it catches);
//   - what the send-as attribute of its etc/users line allows, a comma
//     separated list of addresses, "@domain" for a whole domain, or "*"
//     for anything (for a trusted gateway account).
//
// The envelope sender is checked at MAIL (553 5.7.1) and every address of
// the From header fields at the end of DATA (554 5.7.1). The null sender
// is allowed, for read receipts (RFC 8098 section 2.1); its From header
// is still checked.

// sendAsAttr is the attribute of etc/users that allows more senders.
const sendAsAttr = "send-as"

// maxFromAddrs bounds the From addresses checked in one message.
const maxFromAddrs = 50

// checkSender returns nil if the authenticated user may send as a, else
// refusal (or errConfig when the control files cannot be read).
func (s *Session) checkSender(a address.Address, refusal *smtp.SMTPError) *smtp.SMTPError {
	ok, err := s.maySendAs(a)
	if err != nil {
		s.log.Error("checking sender", "sender", a.String(), "err", err)
		return errConfig
	}
	if !ok {
		s.log.Info("sender refused", "sender", a.String(), "user", s.authUser, "client", s.cc.ip,
			"reply", replyCode(refusal))
		return refusal
	}
	return nil
}

func (s *Session) maySendAs(a address.Address) (bool, error) {
	user := s.user.Addr
	if base, _ := a.StripTag(config.TagSeparator); a.Key() == user.Key() || base.Key() == user.Key() {
		return true, nil
	}
	if sendAsAllows(s.user.Attrs[sendAsAttr], a) {
		return true, nil
	}
	cfg := s.srv.opts.Config
	local, err := cfg.IsLocal(a.Domain)
	if err != nil || !local {
		return false, err
	}
	targets, err := cfg.Resolve(a)
	if errors.Is(err, config.ErrNoSuchUser) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, t := range targets {
		if t.User != nil && t.User.Addr.Key() == user.Key() {
			return true, nil
		}
	}
	return false, nil
}

// sendAsAllows reports whether a send-as attribute value names a.
func sendAsAllows(list string, a address.Address) bool {
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case item == "*":
			return true
		case strings.HasPrefix(item, "@"):
			if strings.EqualFold(item[1:], a.Domain) {
				return true
			}
		default:
			if b, err := address.Parse(item); err == nil && b.Key() == a.Key() {
				return true
			}
		}
	}
	return false
}

// checkFrom reads the header section of a spooled message (LF line
// endings) and checks every address of its From fields.
func (s *Session) checkFrom(msg io.Reader) *smtp.SMTPError {
	values, err := headerValues(msg, "from")
	if err != nil {
		s.log.Warn("reading From header", "err", err)
		return errQueueTemp
	}
	var addrs []*mail.Address
	for _, v := range values {
		list, err := addressParser.ParseList(v)
		if err != nil {
			s.log.Info("message refused", "reason", "malformed From", "user", s.authUser, "client", s.cc.ip)
			return errBadFrom
		}
		addrs = append(addrs, list...)
	}
	if len(addrs) == 0 || len(addrs) > maxFromAddrs {
		s.log.Info("message refused", "reason", "no From or too many", "count", len(addrs), "user", s.authUser)
		return errBadFrom
	}
	for _, ma := range addrs {
		a, err := address.Parse(ma.Address)
		if err != nil {
			return errBadFrom
		}
		if e := s.checkSender(a, errFromNotOwned); e != nil {
			return e
		}
	}
	return nil
}

// addressParser decodes RFC 2047 display names in any charset as they
// are: only the addresses matter here.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// headerValues returns the unfolded values of the header fields named
// name (lower case) in the header section of msg, which ends at the first
// empty line (RFC 5322 section 2.2). Lines are bounded by the line limit
// already checked on the way in.
func headerValues(msg io.Reader, name string) ([]string, error) {
	br := bufio.NewReader(msg)
	var out []string
	cur := -1 // index in out of the field being continued, -1 if another
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if err == io.EOF || err == nil {
				return out, nil
			}
			return out, err
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
			if cur >= 0 {
				out[cur] += " " + strings.TrimSpace(line)
			}
		default:
			cur = -1
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
				out = append(out, strings.TrimSpace(v))
				cur = len(out) - 1
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
