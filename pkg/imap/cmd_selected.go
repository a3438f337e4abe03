package imap

import (
	"errors"
	"strconv"
	"strings"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// Commands of the selected state that change messages (RFC 3501 section
// 6.4), UNSELECT (RFC 3691) and MOVE (RFC 6851).
func init() {
	commands["CHECK"] = handler{cmdCheck, selectedS}
	commands["CLOSE"] = handler{cmdClose, selectedS}
	commands["UNSELECT"] = handler{cmdClose, selectedS}
	commands["EXPUNGE"] = handler{cmdExpunge, selectedS}
	commands["STORE"] = handler{cmdStore, selectedS}
	commands["COPY"] = handler{cmdCopy, selectedS}
	commands["MOVE"] = handler{cmdCopy, selectedS}
}

// RFC 3501 section 6.4.1: every change is already durable.
func cmdCheck(s *session, c *command) error { return c.p.End() }

// RFC 3501 section 6.4.2 (CLOSE expunges silently) and RFC 3691.
func cmdClose(s *session, c *command) error {
	if err := c.p.End(); err != nil {
		return err
	}
	sel := s.sel
	if c.name != "CLOSE" || sel.readOnly {
		s.unselect()
		s.state = stateAuth
		return nil
	}
	s.sel, s.state = nil, stateAuth
	// The flags as they are now, which other sessions may have changed;
	// CLOSE sends no untagged responses.
	snap, _, err := sel.folder.Sync(true)
	if err != nil {
		return err
	}
	var bases []string
	for _, m := range snap.Msgs {
		if m.Flags.Has('T') {
			bases = append(bases, m.Base)
		}
	}
	return sel.folder.Expunge(bases)
}

// RFC 3501 section 6.4.3 and UID EXPUNGE (RFC 4315 section 2.1).
func cmdExpunge(s *session, c *command) error {
	var set wire.SeqSet
	if c.uid {
		err := c.p.SP()
		if err == nil {
			set, err = c.p.SeqSet()
		}
		if err != nil {
			return err
		}
	}
	if err := c.p.End(); err != nil {
		return err
	}
	if s.sel.readOnly {
		return no("READ-ONLY", "mailbox is read-only")
	}
	// Bring the view up to date first: \Deleted may have been set or
	// cleared by another session.
	if err := s.update(true); err != nil || s.state != stateSelected {
		return err
	}
	sel := s.sel
	inSet := map[int]bool{}
	if c.uid {
		for _, i := range sel.resolve(set, true) {
			inSet[i] = true
		}
	}
	var bases []string
	var idx []int
	for i, m := range sel.msgs {
		if m.Flags.Has('T') && !sel.isGone(i) && (!c.uid || inSet[i]) {
			bases = append(bases, m.Base)
			idx = append(idx, i)
		}
	}
	if err := sel.folder.Expunge(bases); err != nil {
		return err
	}
	s.expunged(idx)
	if sel.ms != nil {
		// RFC 7162 (QRESYNC, EXPUNGE: HIGHESTMODSEQ in the tagged OK): record the
		// expunges now, so that the value counts them.
		if err := s.update(true); err != nil || s.state != stateSelected {
			return err
		}
		code := "HIGHESTMODSEQ " + u64(sel.ms.Highest())
		if c.uid {
			return ok(code, "UID EXPUNGE completed")
		}
		return ok(code, "EXPUNGE completed")
	}
	return nil
}

// expunged sends EXPUNGE (VANISHED with QRESYNC) for the messages at idx
// (ascending) and drops them from the view.
func (s *session) expunged(idx []int) {
	if s.qresync {
		uids := make([]uint32, len(idx))
		for k, i := range idx {
			uids[k] = s.sel.msgs[i].UID
		}
		s.sel.remove(idx)
		s.vanished(uids)
		return
	}
	for k := len(idx) - 1; k >= 0; k-- {
		s.w.Raw("* " + strconv.Itoa(idx[k]+1) + " EXPUNGE\r\n")
	}
	s.sel.remove(idx)
}

// RFC 3501 section 6.4.6.
func cmdStore(s *session, c *command) error {
	set, err := seqArg(c)
	if err != nil {
		return err
	}
	var item string
	var cond bool
	var since uint64
	err = c.p.SP()
	if err == nil {
		cond, since, err = storeModifier(c.p)
	}
	if err == nil {
		item, err = c.p.AtomWith("+-.")
	}
	if err == nil {
		err = c.p.SP()
	}
	if err != nil {
		return err
	}
	item = strings.ToUpper(item)
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	if item != "FLAGS" && item != "+FLAGS" && item != "-FLAGS" {
		return bad("unknown STORE item " + item)
	}
	list, err := storeFlags(c.p)
	if err != nil {
		return err
	}
	if s.sel.readOnly {
		return no("READ-ONLY", "mailbox is read-only")
	}
	before, err := s.sel.folder.Keywords()
	if err != nil {
		return err
	}
	want, err := s.sel.folder.Letters(list, item != "-FLAGS")
	if err != nil {
		return flagError(err)
	}
	if after, err := s.sel.folder.Keywords(); err == nil && len(after) != len(before) {
		// RFC 3501 section 7.2.6: new keywords change FLAGS.
		flags, perm, _ := folderFlags(s.sel.folder)
		s.w.Raw("* FLAGS " + flags + "\r\n* OK [PERMANENTFLAGS " + perm + "] limited\r\n")
	}
	if err := s.sel.checkSeq(set, c.uid); err != nil {
		return err
	}
	change := func(old mailstore.Flags) mailstore.Flags {
		switch item {
		case "+FLAGS":
			return old.With(string(want), "")
		case "-FLAGS":
			return old.With("", string(want))
		}
		return old.With("", "DFRST"+lowerLetters).With(string(want), "") // keep P
	}
	if cond {
		if err := s.enableCondstore(); err != nil {
			return err
		}
	}
	if s.sel.ms != nil {
		return s.storeModSeq(set, c.uid, silent, cond, since, change)
	}
	return s.storeEach(set, c.uid, silent, change)
}

func (s *session) storeEach(set wire.SeqSet, uid, silent bool, change func(mailstore.Flags) mailstore.Flags) error {
	sel := s.sel
	failed := false
	for _, i := range sel.resolve(set, uid) {
		if sel.isGone(i) {
			failed = true
			continue
		}
		v := sel.msgs[i]
		now, err := sel.folder.SetFlags(v.Base, change)
		if errors.Is(err, mailstore.ErrGone) {
			sel.markGone(i)
			failed = true
			continue
		}
		if err != nil {
			return err
		}
		sel.setFlagsAt(i, now)
		v.Flags = now
		if !silent {
			s.w.Raw("* " + strconv.Itoa(i+1) + " FETCH (FLAGS " + sel.flagList(v))
			if uid {
				s.w.Raw(" UID " + u32(v.UID))
			}
			s.w.Raw(")\r\n")
		}
	}
	if failed {
		return no("EXPUNGEISSUED", "some messages were expunged meanwhile")
	}
	return nil
}

const lowerLetters = "abcdefghijklmnopqrstuvwxyz"

// storeFlags reads a flag list, with or without parentheses.
func storeFlags(p *wire.Parser) ([]string, error) {
	if p.Peek() == '(' {
		return p.FlagList()
	}
	var flags []string
	for {
		f, err := p.Flag()
		if err != nil {
			return nil, err
		}
		flags = append(flags, f)
		if p.AtEnd() {
			return flags, nil
		}
		if err := p.SP(); err != nil {
			return nil, err
		}
	}
}

func seqArg(c *command) (wire.SeqSet, error) {
	if err := c.p.SP(); err != nil {
		return wire.SeqSet{}, err
	}
	return c.p.SeqSet()
}

// COPY (RFC 3501 section 6.4.7) and MOVE (RFC 6851), with COPYUID
// (RFC 4315).
func cmdCopy(s *session, c *command) error {
	set, err := seqArg(c)
	if err != nil {
		return err
	}
	name, err := mailboxArg(c.p)
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	if err := s.sel.checkSeq(set, c.uid); err != nil {
		return err
	}
	move := c.name == "MOVE"
	if move && s.sel.readOnly {
		return no("READ-ONLY", "mailbox is read-only")
	}
	dst, err := s.store.Folder(name)
	if errors.Is(err, mailstore.ErrNoFolder) {
		return no("TRYCREATE", "no such mailbox")
	}
	if err != nil {
		return storeError(err)
	}
	var msgs []mailstore.Message
	var idx []int
	for _, i := range s.sel.resolve(set, c.uid) {
		if !s.sel.isGone(i) {
			msgs = append(msgs, s.sel.msgs[i])
			idx = append(idx, i)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	limit, err := s.quotaLimit()
	if err != nil {
		return err
	}
	if !move && limit >= 0 {
		var add int64 // only with a quota: a name without W= is read whole
		for _, m := range msgs {
			n, err := s.sel.folder.Size(m.Base)
			if err != nil && !errors.Is(err, mailstore.ErrGone) {
				return err
			}
			add += n
		}
		if err := s.checkQuota(add); err != nil {
			return err
		}
	}
	uids, err := s.sel.folder.CopyTo(dst, msgs)
	if err != nil {
		return err
	}
	var src []uint32
	for _, m := range msgs {
		src = append(src, m.UID)
	}
	code := "COPYUID " + u32(dst.Validity()) + " " + uidSet(src) + " " + uidSet(uids)
	if !move {
		return ok(code, "COPY completed")
	}
	s.w.Raw("* OK [" + code + "] moved\r\n")
	var bases []string
	for _, m := range msgs {
		bases = append(bases, m.Base)
	}
	if err := s.sel.folder.Expunge(bases); err != nil {
		return err
	}
	s.expunged(idx)
	return nil
}

// uidSet formats UIDs in order as a compact set ("1:3,7").
func uidSet(uids []uint32) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(u32(uids[i]))
		if j > i {
			b.WriteString(":" + u32(uids[j]))
		}
		i = j + 1
	}
	return b.String()
}
