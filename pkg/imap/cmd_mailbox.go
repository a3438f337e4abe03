package imap

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// Commands of the authenticated state that name a folder (RFC 3501
// section 6.3).
func init() {
	commands["SELECT"] = handler{cmdSelect, authed}
	commands["EXAMINE"] = handler{cmdSelect, authed}
	commands["CREATE"] = handler{cmdCreate, authed}
	commands["DELETE"] = handler{cmdDelete, authed}
	commands["RENAME"] = handler{cmdRename, authed}
	commands["SUBSCRIBE"] = handler{cmdSubscribe, authed}
	commands["UNSUBSCRIBE"] = handler{cmdSubscribe, authed}
	commands["STATUS"] = handler{cmdStatus, authed}
	commands["APPEND"] = handler{cmdAppend, authed}
}

// mailboxArg reads SP mailbox (RFC 3501 section 9, mailbox).
func mailboxArg(p *wire.Parser) (string, error) {
	if err := p.SP(); err != nil {
		return "", err
	}
	return p.Mailbox()
}

// storeError turns a mailstore error into the response a client can act
// on (RFC 5530 response codes).
func storeError(err error) error {
	switch {
	case errors.Is(err, mailstore.ErrNoFolder):
		return no("NONEXISTENT", "no such mailbox")
	case errors.Is(err, mailstore.ErrExists):
		return no("ALREADYEXISTS", "mailbox already exists")
	case errors.Is(err, mailstore.ErrBadName):
		return no("CANNOT", `invalid mailbox name (parts separated by "/", no ".", 7-bit)`)
	case errors.Is(err, mailstore.ErrInbox):
		return no("CANNOT", "not possible for INBOX")
	}
	return err
}

// RFC 3501 sections 6.3.1 and 6.3.2, with the parameters of RFC 7162
// (condstore.go).
func cmdSelect(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	var params selectParams
	if err == nil {
		params, err = parseSelectParams(c.p)
	}
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	if params.qresync != nil && !s.qresync {
		return bad("QRESYNC is not enabled") // RFC 7162 section 3.2.5
	}
	s.closeSelected()
	s.unselect()
	s.state = stateAuth
	if params.condstore || params.qresync != nil {
		s.condstore = true
	}
	f, err := s.store.Folder(name)
	if err != nil {
		return storeError(err)
	}
	readOnly := c.name == "EXAMINE"
	sel, sum, err := s.openSelected(f, readOnly)
	if err != nil {
		return err
	}
	flags, perm, err := folderFlags(f)
	if err != nil {
		f.ClosePeek()
		return err
	}
	if readOnly {
		perm = "()"
	}
	s.w.Raw("* FLAGS " + flags + "\r\n")
	s.w.Raw("* " + strconv.Itoa(sum.Messages) + " EXISTS\r\n")
	if !s.rev2 { // RFC 9051 appendix E: no RECENT, UNSEEN optional
		s.w.Raw("* " + strconv.Itoa(len(sel.recent)) + " RECENT\r\n")
	}
	if sum.FirstUnseen > 0 && !s.rev2 {
		s.w.Raw("* OK [UNSEEN " + strconv.Itoa(sum.FirstUnseen) + "] first unseen\r\n")
	}
	s.w.Raw("* OK [UIDVALIDITY " + u32(sum.Validity) + "] UIDs valid\r\n")
	s.w.Raw("* OK [UIDNEXT " + u32(sum.Next) + "] predicted next UID\r\n")
	s.w.Raw("* OK [PERMANENTFLAGS " + perm + "] limited\r\n")
	if err := s.selectList(f.Name); err != nil {
		f.ClosePeek()
		return err
	}
	s.sel, s.state = sel, stateSelected
	if s.condstore {
		if err := s.trackModSeqs(); err != nil { // never lazy: openSelected
			s.sel, s.state = nil, stateAuth
			return err
		}
		s.w.Raw("* OK [HIGHESTMODSEQ " + u64(sel.ms.Highest()) + "] Highest\r\n")
		if params.qresync != nil {
			s.qresyncSelect(params.qresync)
		}
	}
	if readOnly {
		return ok("READ-ONLY", "EXAMINE completed")
	}
	return ok("READ-WRITE", "SELECT completed")
}

// openSelected syncs f for SELECT or EXAMINE and returns its view and what
// the responses report. Without CONDSTORE, a folder whose index is current
// is opened lazily from the index's summary (mailstore.Peek): the view's
// messages are read at the first command that needs them (settle).
func (s *session) openSelected(f *mailstore.Folder, readOnly bool) (*selected, mailstore.Summary, error) {
	sel := &selected{folder: f, readOnly: readOnly, recent: map[uint32]bool{}, noRecent: s.rev2}
	if !s.condstore {
		if sum, ok := f.Peek(); ok {
			sel.lazy, sel.validity, sel.next = true, sum.Validity, sum.Next
			return sel, sum, nil
		}
	}
	snap, recent, err := f.Sync(!readOnly)
	if err != nil {
		return nil, mailstore.Summary{}, err
	}
	sel.validity, sel.next, sel.gen = snap.Validity, snap.Next, snap.Gen
	sel.markRecent(snap, recent)
	sel.view(snap)
	return sel, snap.Summary(), nil
}

// folderFlags returns the FLAGS and PERMANENTFLAGS lists of a folder: the
// system flags, its keywords, and \* since clients may make new keywords.
func folderFlags(f *mailstore.Folder) (flags, perm string, err error) {
	kw, err := f.Keywords()
	all := append(slices.Clone(mailstore.SystemFlags), kw...)
	flags = "(" + strings.Join(all, " ") + ")"
	perm = "(" + strings.Join(append(all, `\*`), " ") + ")"
	return flags, perm, err
}

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// RFC 3501 section 6.3.3. A trailing "/" asks for a parent to be; in
// Maildir++ the folder is simply made.
func cmdCreate(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	var uses []string
	if err == nil && !c.p.AtEnd() {
		uses, err = createParams(c.p) // CREATE-SPECIAL-USE, rev2.go
	}
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	if len(uses) > 0 {
		return createSpecial(s, strings.TrimSuffix(name, mailstore.Delim), uses)
	}
	return storeError(s.store.Create(strings.TrimSuffix(name, mailstore.Delim)))
}

// RFC 3501 section 6.3.4.
func cmdDelete(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	if s.sel != nil && s.sel.folder.Name == name {
		return no("INUSE", "mailbox is selected")
	}
	return s.deleteError(name, s.store.Delete(name)) // rev2.go
}

// RFC 3501 section 6.3.5.
func cmdRename(s *session, c *command) error {
	from, err := mailboxArg(c.p)
	if err != nil {
		return err
	}
	to, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	return storeError(s.store.Rename(from, to))
}

// RFC 3501 sections 6.3.6 and 6.3.7.
func cmdSubscribe(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	return storeError(s.store.Subscribe(name, c.name == "SUBSCRIBE"))
}

// RFC 3501 section 6.3.10, with SIZE (RFC 8438) and DELETED (RFC 9051
// section 6.3.11).
func cmdStatus(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.SP()
	}
	if err != nil {
		return err
	}
	items, err := statusItems(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	return s.writeStatus(name, items)
}

// statusItems reads "(" status-att *(SP status-att) ")".
func statusItems(p *wire.Parser) ([]string, error) {
	var items []string
	err := p.List(func() error {
		a, err := p.Atom()
		a = strings.ToUpper(a)
		switch a {
		case "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED", "HIGHESTMODSEQ":
		default:
			return bad("unknown STATUS item " + a)
		}
		items = append(items, a)
		return err
	})
	return items, err
}

// writeStatus writes the STATUS response of a folder.
func (s *session) writeStatus(name string, items []string) error {
	f, err := s.store.Folder(name)
	if err != nil {
		return storeError(err)
	}
	var highest uint64
	wantsModSeq := slices.Contains(items, "HIGHESTMODSEQ")
	counts, ok := mailstore.Counts{}, false
	if !wantsModSeq {
		counts, ok = f.PeekCounts() // a few hundred bytes, while the index is current
	}
	var snap mailstore.Snapshot
	if !ok {
		if counts, snap, err = f.Counts(); err != nil {
			return err
		}
	}
	if wantsModSeq {
		// RFC 7162 section 3.1.7; an enabling command (section 3.1).
		if err := s.enableCondstore(); err != nil {
			return err
		}
		ms := mailstore.NewModSeqs(f.Dir)
		if err := ms.Sync(f, snap); err != nil {
			return err
		}
		highest = ms.Highest()
	}
	vals := map[string]string{
		"MESSAGES": strconv.Itoa(counts.Messages), "RECENT": strconv.Itoa(counts.Recent),
		"UIDNEXT": u32(counts.Next), "UIDVALIDITY": u32(counts.Validity),
		"UNSEEN": strconv.Itoa(counts.Unseen), "SIZE": strconv.FormatInt(counts.Size, 10),
		"DELETED": strconv.Itoa(counts.Deleted), "HIGHESTMODSEQ": u64(highest),
	}
	s.w.Raw("* STATUS ").Mailbox(f.Name).Raw(" (")
	for i, it := range items {
		if i > 0 {
			s.w.SP()
		}
		s.w.Raw(it + " " + vals[it])
	}
	s.w.Raw(")\r\n")
	return nil
}

// RFC 3501 section 6.3.11, answering with APPENDUID (RFC 4315).
func cmdAppend(s *session, c *command) error {
	name, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.SP()
	}
	if err != nil {
		return err
	}
	var list []string
	if c.p.Peek() == '(' {
		var err error
		list, err = c.p.FlagList()
		if err == nil {
			err = c.p.SP()
		}
		if err != nil {
			return err
		}
	}
	var date time.Time
	if c.p.Peek() == '"' {
		d, err := c.p.String()
		if err == nil {
			err = c.p.SP()
		}
		if err != nil {
			return err
		}
		if date, err = time.Parse("_2-Jan-2006 15:04:05 -0700", d); err != nil {
			return bad("invalid date-time")
		}
	}
	utf8Data, err := appendUTF8(s, c.p) // UTF8 (~{n}...) of UTF8=ACCEPT, rev2.go
	if err != nil {
		return err
	}
	c.p.Accept('~') // literal8 (RFC 3516 section 4.4)
	msg, size, err := c.p.StringReader()
	if err == nil && utf8Data {
		err = c.p.Close()
	}
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	f, err := s.store.Folder(name)
	if errors.Is(err, mailstore.ErrNoFolder) {
		return no("TRYCREATE", "no such mailbox")
	}
	if err != nil {
		return storeError(err)
	}
	if err := s.checkQuota(size); err != nil {
		return err
	}
	flags, err := f.Letters(list, true)
	if err != nil {
		return flagError(err)
	}
	if date.IsZero() {
		date = time.Now()
	}
	uid, validity, err := f.AppendFrom(msg, flags, date)
	if err != nil {
		return err
	}
	return ok("APPENDUID "+u32(validity)+" "+u32(uid), "APPEND completed")
}

// flagError answers a flag that cannot be stored.
func flagError(err error) error {
	switch {
	case errors.Is(err, mailstore.ErrBadFlag):
		return bad(err.Error())
	case errors.Is(err, mailstore.ErrTooManyKeywords):
		return no("LIMIT", err.Error())
	}
	return err
}
