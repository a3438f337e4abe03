package imap

import (
	"cmp"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// selected is the session's view of the selected folder: the messages in
// sequence-number order as this client last heard of them (RFC 3501
// section 2.3.1.2).
type selected struct {
	folder   *mailstore.Folder
	readOnly bool // EXAMINE
	// msgs are the messages as the client knows them, in UID order. While
	// shared is set, msgs is a folder snapshot's own array, read-only
	// (mailstore.Snapshot): own() makes a copy before any change. A session
	// of 100,000 messages then holds no second array of them.
	msgs     []mailstore.Message
	shared   bool
	gone     map[uint32]bool   // UIDs expunged by someone else: EXPUNGE not sent yet
	mods     map[uint32]uint64 // with CONDSTORE: the mod-sequence last reported, by UID
	recent   map[uint32]bool   // UIDs \Recent for this session
	validity uint32
	next     uint32             // UIDNEXT last seen
	gen      uint64             // Snapshot.Gen last applied
	saved    map[uint32]bool    // UIDs of the last SEARCH SAVE, for "$" (RFC 5182)
	noRecent bool               // IMAP4rev2: no \Recent, no RECENT (RFC 9051 appendix E)
	ms       *mailstore.ModSeqs // once CONDSTORE is enabled (condstore.go)
	msGen    uint64             // ms.Gen() last applied
	lazy     bool               // opened from the index's summary: msgs not read yet (settle)
}

// own makes msgs the session's own array, before a change.
func (sel *selected) own() {
	if sel.shared {
		sel.msgs = slices.Clone(sel.msgs)
		sel.shared = false
	}
}

// setFlagsAt records new flags of the message at index i.
func (sel *selected) setFlagsAt(i int, f mailstore.Flags) {
	if sel.msgs[i].Flags != f {
		sel.own()
		sel.msgs[i].Flags = f
	}
}

// isGone reports whether the message at index i was expunged by someone
// else and the client not told yet.
func (sel *selected) isGone(i int) bool {
	return len(sel.gone) > 0 && sel.gone[sel.msgs[i].UID]
}

// markGone records that the message at index i is gone.
func (sel *selected) markGone(i int) {
	if sel.gone == nil {
		sel.gone = make(map[uint32]bool)
	}
	sel.gone[sel.msgs[i].UID] = true
}

// setMod records the mod-sequence reported for uid.
func (sel *selected) setMod(uid uint32, mod uint64) {
	if sel.mods == nil {
		sel.mods = make(map[uint32]uint64)
	}
	sel.mods[uid] = mod
}

// dropGone removes the messages marked gone from msgs, and returns the
// indexes they had and their UIDs, ascending.
func (sel *selected) dropGone() (idx []int, uids []uint32) {
	if len(sel.gone) == 0 {
		return nil, nil
	}
	for i, m := range sel.msgs {
		if sel.gone[m.UID] {
			idx, uids = append(idx, i), append(uids, m.UID)
		}
	}
	sel.remove(idx)
	sel.gone = nil
	return idx, uids
}

// remove drops the messages at idx (ascending) from msgs.
func (sel *selected) remove(idx []int) {
	if len(idx) == 0 {
		return
	}
	sel.own()
	kept, k := sel.msgs[:0], 0
	for i, m := range sel.msgs {
		if k < len(idx) && idx[k] == i {
			k++
			if sel.mods != nil {
				delete(sel.mods, m.UID)
			}
			continue
		}
		kept = append(kept, m)
	}
	clear(sel.msgs[len(kept):]) // no names kept alive past the end
	sel.msgs = kept
}

func (sel *selected) maxUID() uint32 {
	if len(sel.msgs) == 0 {
		return 0
	}
	return sel.msgs[len(sel.msgs)-1].UID
}

// seqOf returns the index of uid in msgs, or -1.
func (sel *selected) seqOf(uid uint32) int {
	i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].UID >= uid })
	if i < len(sel.msgs) && sel.msgs[i].UID == uid {
		return i
	}
	return -1
}

// resolve returns the indexes in msgs named by a sequence set, of sequence
// numbers or of UIDs (RFC 3501 section 9, "*" is the largest in use).
func (sel *selected) resolve(set wire.SeqSet, uid bool) []int {
	var out []int
	if set.Saved {
		for i, m := range sel.msgs {
			if sel.saved[m.UID] {
				out = append(out, i)
			}
		}
		return out
	}
	if uid {
		max := sel.maxUID()
		for i, m := range sel.msgs {
			if set.Contains(m.UID, max) {
				out = append(out, i)
			}
		}
		return out
	}
	n := uint32(len(sel.msgs))
	for i := range sel.msgs {
		if set.Contains(uint32(i+1), n) {
			out = append(out, i)
		}
	}
	return out
}

// checkSeq refuses sequence numbers beyond the mailbox (RFC 3501 section
// 9, seq-number: a number that is not in use is an error).
func (sel *selected) checkSeq(set wire.SeqSet, uid bool) error {
	if uid || set.Saved {
		return nil
	}
	n := uint32(len(sel.msgs))
	for _, r := range set.Ranges {
		for _, x := range []uint32{r.Lo, r.Hi} {
			if x != wire.Star && x > n || x == wire.Star && n == 0 {
				return bad("invalid message sequence number")
			}
		}
	}
	return nil
}

// markRecent records the messages this session moved out of new/.
func (sel *selected) markRecent(snap mailstore.Snapshot, bases []string) {
	if len(bases) == 0 || sel.noRecent {
		return
	}
	set := make(map[string]bool, len(bases))
	for _, b := range bases {
		set[b] = true
	}
	for _, m := range snap.Msgs {
		if set[m.Base] {
			sel.recent[m.UID] = true
		}
	}
}

// flagList formats the flags of m for FLAGS responses.
func (sel *selected) flagList(m mailstore.Message) string {
	f := sel.folder.FlagNames(m.Flags)
	if sel.recent[m.UID] {
		f = append(f, `\Recent`)
	}
	return "(" + strings.Join(f, " ") + ")"
}

// view makes msgs the messages of snap, shared with it.
func (sel *selected) view(snap mailstore.Snapshot) {
	sel.msgs, sel.shared, sel.gone = snap.Msgs, true, nil
}

// Commands that run on a lazily opened folder without its messages;
// before any other, settle reads them.
var noMessages = map[string]bool{"CAPABILITY": true, "NOOP": true, "CHECK": true, "LOGOUT": true,
	"ID": true, "NAMESPACE": true, "LIST": true, "LSUB": true, "STATUS": true, "CREATE": true,
	"DELETE": true, "RENAME": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true, "SELECT": true,
	"EXAMINE": true, "CLOSE": true, "UNSELECT": true, "APPEND": true, "GETQUOTA": true,
	"GETQUOTAROOT": true, "SETQUOTA": true, "IDLE": true}

// settle gives a lazily opened folder's view the messages its SELECT
// reported: the snapshot of the index summarized then, whatever changed
// since (update reports that afterwards, as for any change). If the index
// cannot give it, the session ends: its sequence numbers would be wrong.
func (s *session) settle() error {
	sel := s.sel
	if sel == nil || !sel.lazy {
		return nil
	}
	sel.lazy = false
	snap, err := sel.folder.PeekedSnapshot()
	if err != nil {
		s.log.Error("mailbox index", "folder", sel.folder.Name, "err", err)
		s.w.Raw("* BYE mailbox index changed unexpectedly, please reconnect\r\n")
		s.state, s.sel = stateLogout, nil
		return no("UNAVAILABLE", "mailbox index changed, please reconnect")
	}
	sel.gen = snap.Gen
	sel.view(snap)
	return nil
}

// unselect leaves the selected folder, if any.
func (s *session) unselect() {
	if s.sel != nil {
		s.sel.folder.ClosePeek()
	}
	s.sel = nil
}

// update syncs the folder and tells the client what other processes did:
// EXPUNGE (when allowed), EXISTS, RECENT and FETCH FLAGS (RFC 3501 section
// 7.4 and 5.2).
func (s *session) update(allowExpunge bool) error {
	sel := s.sel
	if sel.lazy {
		if sel.folder.Unchanged() {
			return nil
		}
		if err := s.settle(); err != nil {
			return err
		}
	}
	snap, recent, err := sel.folder.Sync(!sel.readOnly)
	if errors.Is(err, mailstore.ErrNoFolder) {
		s.w.Raw("* BYE mailbox was deleted or renamed by another session\r\n")
		s.state = stateLogout
		return nil
	}
	if err != nil {
		return err
	}
	if snap.Validity != sel.validity {
		s.w.Raw("* BYE [UIDVALIDITY " + strconv.FormatUint(uint64(snap.Validity), 10) +
			"] mailbox was renumbered, please reconnect\r\n")
		s.state = stateLogout
		return nil
	}
	if sel.ms != nil {
		if err := sel.ms.Sync(sel.folder, snap); err != nil {
			return err
		}
	}
	if snap.Gen == sel.gen && len(recent) == 0 && (sel.ms == nil || sel.ms.Gen() == sel.msGen) {
		if allowExpunge {
			s.sendExpunges() // held back during FETCH, STORE or SEARCH
		}
		return nil
	}
	sel.gen = snap.Gen
	if sel.ms != nil {
		sel.msGen = sel.ms.Gen()
	}
	sel.markRecent(snap, recent)
	// Both are in UID order: one walk, no table of 100,000 UIDs per change.
	now, j := snap.Msgs, 0
	same := len(sel.gone) == 0 // msgs equal now's first len(msgs)
	for i := range sel.msgs {
		v := sel.msgs[i]
		for j < len(now) && now[j].UID < v.UID {
			j++
			same = false
		}
		if j == len(now) || now[j].UID != v.UID {
			sel.markGone(i)
			same = false
			continue
		}
		m := now[j]
		changed := m.Flags != v.Flags || sel.ms != nil && sel.ms.Of(v.UID) != sel.mods[v.UID]
		if m != v {
			sel.own()
			sel.msgs[i] = m
			same = false
		}
		if changed && !sel.isGone(i) {
			s.flagsFetch(i, false)
		}
	}
	if allowExpunge {
		s.sendExpunges()
	}
	s.addNew(snap, same)
	return nil
}

// sendExpunges reports messages gone, highest sequence number first so
// that each EXPUNGE's number is right when it is read.
func (s *session) sendExpunges() {
	idx, uids := s.sel.dropGone()
	if s.qresync {
		s.vanished(uids)
		return
	}
	for k := len(idx) - 1; k >= 0; k-- {
		s.w.Raw("* " + strconv.Itoa(idx[k]+1) + " EXPUNGE\r\n")
	}
}

// addNew appends messages with UIDs above the known ones and sends EXISTS
// and RECENT when the counts change. same says msgs equal snap's first
// messages: the view then shares snap's array instead of copying it.
func (s *session) addNew(snap mailstore.Snapshot, same bool) {
	sel := s.sel
	max := sel.maxUID()
	first, _ := slices.BinarySearchFunc(snap.Msgs, max+1, func(m mailstore.Message, uid uint32) int { return cmp.Compare(m.UID, uid) })
	switch {
	case same && first == len(sel.msgs):
		sel.msgs, sel.shared = snap.Msgs, true
	case first < len(snap.Msgs):
		sel.own()
		sel.msgs = append(sel.msgs, snap.Msgs[first:]...)
	}
	if first < len(snap.Msgs) {
		if sel.ms != nil {
			for _, m := range snap.Msgs[first:] {
				sel.setMod(m.UID, sel.ms.Of(m.UID))
			}
		}
	}
	sel.next = snap.Next
	if first < len(snap.Msgs) {
		s.w.Raw("* " + strconv.Itoa(len(sel.msgs)) + " EXISTS\r\n")
		if !sel.noRecent {
			s.w.Raw("* " + strconv.Itoa(len(sel.recent)) + " RECENT\r\n")
		}
	}
}
