package imap

import (
	"strconv"
	"strings"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// CONDSTORE and QRESYNC (RFC 7162). A session tracks mod-sequences only
// once it has enabled CONDSTORE (section 3.1: ENABLE, SELECT/EXAMINE with
// CONDSTORE, STATUS HIGHESTMODSEQ, FETCH MODSEQ or CHANGEDSINCE, STORE
// UNCHANGEDSINCE, SEARCH MODSEQ) or QRESYNC (section 3.2.3, which implies
// CONDSTORE): then its selected folder has a mailstore.ModSeqs, synced with
// every look at the folder, and its untagged FETCH responses carry UID and
// MODSEQ. A session that never enables them reads and writes nothing more
// than before. With QRESYNC, messages gone are reported with VANISHED
// instead of EXPUNGE (section 3.2.10).

// enableCondstore makes the session CONDSTORE-aware. With a folder
// selected, tracking starts now (or again, after it failed), and the
// first enabling command reports HIGHESTMODSEQ (section 3.1).
func (s *session) enableCondstore() error {
	s.condstore = true
	if s.sel == nil || s.sel.ms != nil {
		return nil
	}
	if err := s.trackModSeqs(); err != nil {
		return err
	}
	s.w.Raw("* OK [HIGHESTMODSEQ " + u64(s.sel.ms.Highest()) + "] Highest\r\n")
	return nil
}

// trackModSeqs gives the selected folder its mod-sequence record, synced
// with the folder as the client knows it.
func (s *session) trackModSeqs() error {
	sel := s.sel
	if sel.ms != nil {
		return nil
	}
	ms := mailstore.NewModSeqs(sel.folder.Dir)
	snap, recent, err := sel.folder.Sync(!sel.readOnly)
	if err != nil {
		return err
	}
	sel.markRecent(snap, recent)
	if err := ms.Sync(sel.folder, snap); err != nil {
		return err
	}
	sel.ms, sel.msGen = ms, ms.Gen()
	sel.mods = make(map[uint32]uint64, len(sel.msgs))
	for _, m := range sel.msgs {
		sel.mods[m.UID] = sel.ms.Of(m.UID)
	}
	return nil
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// modOf returns the mod-sequence of the message at index i.
func (sel *selected) modOf(i int) uint64 {
	if sel.ms == nil {
		return 0
	}
	return sel.ms.Of(sel.msgs[i].UID)
}

// flagsFetch writes the untagged FETCH that reports new flags of the
// message at index i: with UID and MODSEQ once CONDSTORE is on (section
// 3.1.3 and 3.2.4), with UID when asked for.
func (s *session) flagsFetch(i int, withUID bool) {
	sel := s.sel
	v := sel.msgs[i]
	s.w.Raw("* " + strconv.Itoa(i+1) + " FETCH (")
	if withUID || s.condstore {
		s.w.Raw("UID " + u32(v.UID) + " ")
	}
	s.w.Raw("FLAGS " + sel.flagList(v))
	if s.condstore && sel.ms != nil {
		mod := sel.ms.Of(v.UID)
		sel.setMod(v.UID, mod)
		s.w.Raw(" MODSEQ (" + u64(mod) + ")")
	}
	s.w.Raw(")\r\n")
}

// vanished reports UIDs gone (section 3.2.10), in place of EXPUNGE.
func (s *session) vanished(uids []uint32) {
	if len(uids) > 0 {
		s.w.Raw("* VANISHED " + uidSet(uids) + "\r\n")
	}
}

// modSeqArg reads a mod-sequence-value (1 to 2^63-1) or, with zero, a
// mod-sequence-valzer (section 7).
func modSeqArg(p *wire.Parser, zero bool) (uint64, error) {
	n, err := p.Number64()
	if err != nil || n == 0 && !zero {
		return 0, bad("invalid mod-sequence value")
	}
	return uint64(n), nil
}

// selectParams reads the SELECT/EXAMINE parameters of RFC 7162 section
// 3.1.8 and 3.2.5: (CONDSTORE) and (QRESYNC (uidvalidity modseq
// [known-uids [(known-sequence-set known-uid-set)]])).
type selectParams struct {
	condstore bool
	qresync   *qresyncParam
}

type qresyncParam struct {
	validity   uint32
	mod        uint64
	known      *wire.SeqSet // known-uids, or nil for all
	seqs, uids []uint32     // seq-match-data, paired; nil when absent or too long
}

// maxSeqMatch bounds the pairs of seq-match-data used (clients send a few
// samples, RFC 7162 section 3.2.5.2); longer ones are checked and ignored.
const maxSeqMatch = 1000

func parseSelectParams(p *wire.Parser) (selectParams, error) {
	var sp selectParams
	if p.AtEnd() {
		return sp, nil
	}
	if err := p.SP(); err != nil {
		return sp, err
	}
	err := p.List(func() error {
		a, err := p.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "CONDSTORE":
			sp.condstore = true
			return nil
		case "QRESYNC":
			if err := p.SP(); err != nil {
				return err
			}
			sp.qresync, err = parseQresync(p)
			return err
		}
		return bad("unknown SELECT parameter " + a)
	})
	return sp, err
}

func parseQresync(p *wire.Parser) (*qresyncParam, error) {
	q := &qresyncParam{}
	if err := p.Open(); err != nil {
		return nil, err
	}
	var err error
	if q.validity, err = p.Number(); err != nil || q.validity == 0 {
		return nil, bad("invalid UIDVALIDITY")
	}
	if err := p.SP(); err != nil {
		return nil, err
	}
	if q.mod, err = modSeqArg(p, false); err != nil {
		return nil, err
	}
	if p.Accept(' ') {
		if p.Peek() != '(' {
			set, err := uidSetArg(p)
			if err != nil {
				return nil, err
			}
			q.known = &set
			p.Accept(' ')
		}
		if p.Peek() == '(' {
			// seq-match-data: sequence numbers the client had for some
			// UIDs (see seqMatchFloor).
			if err := p.Open(); err != nil {
				return nil, err
			}
			seqs, err := uidSetArg(p)
			if err != nil {
				return nil, err
			}
			if err := p.SP(); err != nil {
				return nil, err
			}
			uids, err := uidSetArg(p)
			if err != nil {
				return nil, err
			}
			if err := p.Close(); err != nil {
				return nil, err
			}
			q.seqs, q.uids = expandSet(seqs), expandSet(uids)
			if len(q.seqs) != len(q.uids) {
				q.seqs, q.uids = nil, nil
			}
		}
	}
	return q, p.Close()
}

// uidSetArg reads a sequence set, without "$" (RFC 7162 section 7,
// known-uids and seq-match-data).
func uidSetArg(p *wire.Parser) (wire.SeqSet, error) {
	if p.Peek() == '$' {
		return wire.SeqSet{}, bad("$ not allowed here")
	}
	return p.SeqSet()
}

// uidRanges turns a set of UIDs into inclusive ranges, "*" standing for
// max; nil means 1:max.
func uidRanges(set *wire.SeqSet, max uint32) [][2]uint32 {
	if set == nil {
		return [][2]uint32{{1, max}}
	}
	var out [][2]uint32
	for _, r := range set.Ranges {
		lo, hi := r.Lo, r.Hi
		if lo == wire.Star {
			lo = max
		}
		if hi == wire.Star {
			hi = max
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		out = append(out, [2]uint32{lo, hi})
	}
	return out
}

// qresyncSelect sends what changed since the client's state (section
// 3.2.5.1): VANISHED (EARLIER) for messages gone, then FETCH for messages
// changed, both limited to the known UIDs. Nothing when the UIDVALIDITY
// differs: the client must start over.
func (s *session) qresyncSelect(q *qresyncParam) {
	sel := s.sel
	if q.validity != sel.validity {
		return
	}
	s.earlierVanished(q.mod, q.known, s.seqMatchFloor(q))
	known := mailstore.MergeRanges(uidRanges(q.known, sel.maxUID()))
	for i, v := range sel.msgs {
		if !mailstore.InRanges(known, v.UID) {
			continue
		}
		if sel.modOf(i) > q.mod {
			s.flagsFetch(i, true)
		}
	}
}

// expandSet lists the numbers of a set without "*", in its order, or nil
// when it has more than maxSeqMatch or a "*".
func expandSet(set wire.SeqSet) []uint32 {
	var out []uint32
	for _, r := range set.Ranges {
		if r.Lo == wire.Star || r.Hi == wire.Star || r.Hi < r.Lo || r.Hi-r.Lo >= maxSeqMatch ||
			len(out)+int(r.Hi-r.Lo)+1 > maxSeqMatch {
			return nil
		}
		for n := r.Lo; n <= r.Hi; n++ {
			out = append(out, n)
		}
	}
	return out
}

// seqMatchFloor returns the largest UID of the seq-match-data whose
// sequence number is the same now as the client had it: then none of the
// messages below it that the client knew was expunged (UIDs only grow, so
// the client knew every message below it), and VANISHED (EARLIER) need
// name only UIDs above it (RFC 7162 section 3.2.5.2). 0 when none matches.
func (s *session) seqMatchFloor(q *qresyncParam) uint32 {
	var floor uint32
	for k, uid := range q.uids {
		if i := s.sel.seqOf(uid); i >= 0 && uint32(i+1) == q.seqs[k] {
			floor = max(floor, uid)
		}
	}
	return floor
}

// earlierVanished sends VANISHED (EARLIER) for the UIDs of known (nil:
// all) above floor expunged after mod.
func (s *session) earlierVanished(mod uint64, known *wire.SeqSet, floor uint32) {
	sel := s.sel
	live := make(map[uint32]bool, len(sel.msgs))
	for i, v := range sel.msgs {
		if !sel.isGone(i) {
			live[v.UID] = true
		}
	}
	var ranges [][2]uint32
	for _, r := range uidRanges(known, sel.next-1) {
		if r[1] > floor {
			ranges = append(ranges, [2]uint32{max(r[0], floor+1), r[1]})
		}
	}
	gone := sel.ms.Vanished(mod, ranges, sel.next, func(uid uint32) bool { return live[uid] })
	if len(gone) > 0 {
		s.w.Raw("* VANISHED (EARLIER) " + uidSet(gone) + "\r\n")
	}
}

// storeModifier reads STORE's optional (UNCHANGEDSINCE n) (section
// 3.1.3); cond reports whether it was there.
func storeModifier(p *wire.Parser) (cond bool, since uint64, err error) {
	if p.Peek() != '(' {
		return false, 0, nil
	}
	err = p.List(func() error {
		a, err := p.Atom()
		if err != nil {
			return err
		}
		if !strings.EqualFold(a, "UNCHANGEDSINCE") || cond {
			return bad("unknown or repeated STORE modifier " + a)
		}
		if err := p.SP(); err != nil {
			return err
		}
		cond = true
		since, err = modSeqArg(p, true)
		return err
	})
	if err == nil {
		err = p.SP()
	}
	return cond, since, err
}

// fetchModifiers reads FETCH's optional (CHANGEDSINCE n [VANISHED])
// (sections 3.1.4.1 and 3.2.6).
type fetchMods struct {
	changedSince uint64
	changed      bool
	vanished     bool
}

func parseFetchModifiers(p *wire.Parser) (fetchMods, error) {
	var m fetchMods
	if p.AtEnd() {
		return m, nil
	}
	if err := p.SP(); err != nil {
		return m, err
	}
	err := p.List(func() error {
		a, err := p.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "CHANGEDSINCE":
			if m.changed {
				return bad("repeated CHANGEDSINCE")
			}
			if err := p.SP(); err != nil {
				return err
			}
			m.changed = true
			m.changedSince, err = modSeqArg(p, false)
			return err
		case "VANISHED":
			m.vanished = true
			return nil
		}
		return bad("unknown FETCH modifier " + a)
	})
	return m, err
}

// usesModSeq reports whether a search has a MODSEQ key (section 3.1.5).
func usesModSeq(k *searchKey) bool {
	if k.op == "MODSEQ" {
		return true
	}
	for _, kid := range k.kids {
		if usesModSeq(kid) {
			return true
		}
	}
	return false
}

// parseModSeqKey reads the rest of MODSEQ [entry-name entry-type-req]
// mod-sequence-valzer. Flags have no mod-sequences of their own here, so
// the entry is checked and then ignored.
func parseModSeqKey(p *wire.Parser, k *searchKey) error {
	if err := p.SP(); err != nil {
		return err
	}
	if p.Peek() == '"' {
		if _, err := p.String(); err != nil {
			return err
		}
		if err := p.SP(); err != nil {
			return err
		}
		t, err := p.Atom()
		if err != nil {
			return err
		}
		switch strings.ToLower(t) {
		case "priv", "shared", "all":
		default:
			return bad("invalid MODSEQ entry type " + t)
		}
		if err := p.SP(); err != nil {
			return err
		}
	}
	n, err := modSeqArg(p, true)
	k.mod = n
	return err
}

// searchModSeq is the highest mod-sequence of the messages found, for the
// (MODSEQ n) of SEARCH and ESEARCH (sections 3.1.6 and 3.1.10); 0 for none.
func (s *session) searchModSeq(key *searchKey, idx []int) uint64 {
	if s.sel.ms == nil || !usesModSeq(key) {
		return 0
	}
	var high uint64
	for _, i := range idx {
		high = max(high, s.sel.modOf(i))
	}
	return high
}

func wantsModSeq(its []fetchItem) bool {
	for _, it := range its {
		if it.name == "MODSEQ" {
			return true
		}
	}
	return false
}

// setFlags changes the flags of the message at index i (an implicit \Seen),
// recording its new mod-sequence when the session tracks them.
func (s *session) setFlags(i int, change func(mailstore.Flags) mailstore.Flags) error {
	sel := s.sel
	v := sel.msgs[i]
	if sel.ms == nil {
		now, err := sel.folder.SetFlags(v.Base, change)
		if err == nil {
			sel.setFlagsAt(i, now)
		}
		return err
	}
	res, err := sel.ms.SetFlags(sel.folder, []mailstore.Message{v}, false, 0, change)
	if err != nil {
		return err
	}
	if res[0].Gone {
		return mailstore.ErrGone
	}
	sel.setFlagsAt(i, res[0].Flags)
	sel.setMod(v.UID, res[0].Mod)
	return nil
}

// storeModSeq is STORE in a session that tracks mod-sequences: the flags
// change under the folder lock with one new mod-sequence, messages changed
// since the UNCHANGEDSINCE value are left alone and named in MODIFIED
// (RFC 7162 section 3.1.3), and every message changed is reported with its
// MODSEQ, even with .SILENT.
func (s *session) storeModSeq(set wire.SeqSet, uid, silent, cond bool, since uint64, change func(mailstore.Flags) mailstore.Flags) error {
	sel := s.sel
	var idx []int
	var msgs []mailstore.Message
	failed := false
	for _, i := range sel.resolve(set, uid) {
		if sel.isGone(i) {
			failed = true
			continue
		}
		idx = append(idx, i)
		msgs = append(msgs, sel.msgs[i])
	}
	res, err := sel.ms.SetFlags(sel.folder, msgs, cond, since, change)
	if err != nil {
		return err
	}
	var modified []uint32
	for k, r := range res {
		i := idx[k]
		v := sel.msgs[i]
		switch {
		case r.Gone:
			sel.markGone(i)
			failed = true
			continue
		case r.Modified:
			if uid {
				modified = append(modified, v.UID)
			} else {
				modified = append(modified, uint32(i+1))
			}
			continue
		}
		changed := r.Flags != v.Flags || r.Mod != sel.mods[v.UID]
		sel.setFlagsAt(i, r.Flags)
		if !silent || changed {
			s.flagsFetch(i, uid)
		}
	}
	if failed {
		return no("EXPUNGEISSUED", "some messages were expunged meanwhile")
	}
	if len(modified) > 0 {
		return ok("MODIFIED "+uidSet(modified), "conditional STORE failed")
	}
	return nil
}
