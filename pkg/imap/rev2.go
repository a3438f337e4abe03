package imap

import (
	"errors"
	"slices"
	"strings"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// What changes when a client enables IMAP4rev2 (RFC 9051) or UTF8=ACCEPT
// (RFC 6855). A session starts as IMAP4rev1; both capabilities are
// advertised, and a client that wants rev2 says ENABLE IMAP4rev2 (RFC 9051
// section 6.3.1). Then, per RFC 9051 appendix E: no \Recent flag and no
// RECENT response (selected.noRecent), SEARCH answers with ESEARCH
// (search.go), SELECT and EXAMINE send OK [CLOSED] when they close a
// mailbox and an untagged LIST for the one they open, and mailbox names
// are UTF-8 instead of modified UTF-7. UTF8=ACCEPT brings the UTF-8 names
// too, the UTF8 (...) form of APPEND, and refuses SEARCH CHARSET.
//
// Mailbox names stay modified UTF-7 in the Maildir (where rev1 clients
// put them), so that rev1 and rev2 clients of one mailbox see the same
// folders: wire.Parser.Mailbox encodes what a UTF-8 client sends, and
// wire.Writer.Mailbox decodes on the way out.

// enable turns on one extension named in ENABLE (RFC 5161) and returns
// its name for the ENABLED response, or false if it is unknown here or
// was already on.
func (s *session) enable(name string) (string, bool) {
	switch strings.ToUpper(name) {
	case "IMAP4REV2":
		if s.rev2 {
			return "", false
		}
		s.rev2 = true
		name = "IMAP4rev2"
	case "UTF8=ACCEPT":
		if s.utf8Accept {
			return "", false
		}
		s.utf8Accept = true
		name = "UTF8=ACCEPT"
	default:
		return "", false
	}
	s.w.UTF8 = true // both: quoted UTF-8, UTF-8 mailbox names
	return name, true
}

// utf8Names reports whether mailbox names are UTF-8 for this client.
func (s *session) utf8Names() bool { return s.w.UTF8 }

// closeSelected says OK [CLOSED] when SELECT or EXAMINE closes the
// mailbox that was selected, even if the new one cannot be opened: to
// every client, as QRESYNC is advertised (RFC 7162 section 3.2.11; RFC 9051
// section 6.3.2 for rev2), so that the end of the old mailbox's responses
// is known.
func (s *session) closeSelected() {
	if s.sel != nil {
		s.w.Raw("* OK [CLOSED] previous mailbox closed\r\n")
	}
}

// selectList sends the untagged LIST of the mailbox being selected, which
// RFC 9051 section 6.3.2 requires of SELECT and EXAMINE.
func (s *session) selectList(stored string) error {
	if !s.rev2 {
		return nil
	}
	name := stored
	if s.utf8Names() {
		if n, err := wire.DecodeMUTF7(stored); err == nil {
			name = n
		}
	}
	return s.listMailboxes("LIST", []string{name}, listOpts{})
}

// displayNames turns stored folder names into what a UTF-8 client sees,
// and returns the way back (shown name to stored name). A stored name
// that is not modified UTF-7 is shown as it is.
func (s *session) displayNames(names ...[]string) map[string]string {
	back := map[string]string{}
	if !s.utf8Names() {
		return back
	}
	for _, list := range names {
		for i, n := range list {
			if d, err := wire.DecodeMUTF7(n); err == nil && d != n {
				back[d] = n
				list[i] = d
			}
		}
		slices.SortStableFunc(list, func(a, b string) int { // INBOX first, as in List
			if c := cmpBool(!mailstore.IsInbox(a), !mailstore.IsInbox(b)); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
	}
	return back
}

// deleteError answers DELETE of a name that is only the parent of
// others (\Noselect) with NO [HASCHILDREN] (RFC 9051 sections 6.3.4 and
// 7.1), other failures as storeError does.
func (s *session) deleteError(name string, err error) error {
	if errors.Is(err, mailstore.ErrNoFolder) {
		if names, lerr := s.store.List(); lerr == nil && hasChild(names, name) {
			return no("HASCHILDREN", "mailbox has inferior names and does not exist itself")
		}
	}
	return storeError(err)
}

// createParams reads the parameters of CREATE (RFC 4466 section 2.2):
// only USE (RFC 6154 section 3), whose attributes it returns.
func createParams(p *wire.Parser) ([]string, error) {
	if err := p.SP(); err != nil {
		return nil, err
	}
	var uses []string
	err := p.List(func() error {
		a, err := p.Atom()
		if err != nil {
			return err
		}
		if !strings.EqualFold(a, "USE") {
			return bad("unknown CREATE parameter " + a)
		}
		if err := p.SP(); err != nil {
			return err
		}
		return p.List(func() error {
			f, err := p.Flag()
			if len(uses) >= 16 {
				return bad("too many special-use attributes")
			}
			uses = append(uses, f)
			return err
		})
	})
	return uses, err
}

// createSpecial answers CREATE with USE: NO [USEATTR] for an attribute
// we cannot give (RFC 6154 section 3).
func createSpecial(s *session, name string, uses []string) error {
	err := s.store.CreateSpecial(name, uses)
	if errors.Is(err, mailstore.ErrUseAttr) {
		return no("USEATTR", err.Error()+"; possible: "+strings.Join(mailstore.AssignableUses, " "))
	}
	return storeError(err)
}

// appendUTF8 reads the start of APPEND's UTF8 (literal8) form (RFC 6855
// section 4), which is allowed once UTF8=ACCEPT is enabled; the caller
// reads the literal and the closing parenthesis.
func appendUTF8(s *session, p *wire.Parser) (bool, error) {
	if !strings.HasPrefix(strings.ToUpper(p.Rest()), "UTF8 (") {
		return false, nil
	}
	if !s.utf8Accept {
		return false, bad("APPEND UTF8 needs ENABLE UTF8=ACCEPT")
	}
	if _, err := p.Atom(); err != nil {
		return false, err
	}
	if err := p.SP(); err != nil {
		return false, err
	}
	return true, p.Open()
}

// rev2Search adapts SEARCH: an IMAP4rev2 client gets ESEARCH, with ALL
// when it gave no RETURN (RFC 9051 section 6.4.4), and after UTF8=ACCEPT
// a CHARSET is refused (RFC 6855 section 3).
func (s *session) rev2Search(p *wire.Parser, ret *searchReturn) error {
	if s.utf8Accept && strings.HasPrefix(strings.ToUpper(p.Rest()), " CHARSET ") {
		return bad("no CHARSET after ENABLE UTF8=ACCEPT")
	}
	if s.rev2 && !ret.esearch {
		ret.esearch, ret.all = true, true
	}
	return nil
}
