package imap

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// SORT and THREAD=ORDEREDSUBJECT (RFC 5256).
func init() {
	commands["SORT"] = handler{cmdSort, selectedS}
	commands["THREAD"] = handler{cmdThread, selectedS}
	uidCommands["SORT"] = true
	uidCommands["THREAD"] = true
}

// sortKey is one SORT criterion.
type sortKey struct {
	name    string // ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO
	reverse bool
}

func parseSortKeys(p *wire.Parser) ([]sortKey, error) {
	var keys []sortKey
	reverse := false
	err := p.List(func() error {
		a, err := p.Atom()
		a = strings.ToUpper(a)
		switch a {
		case "REVERSE":
			if reverse {
				return bad("REVERSE twice")
			}
			reverse = true
			return err
		case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO":
			keys = append(keys, sortKey{a, reverse})
			reverse = false
			return err
		}
		return bad("unknown sort criterion " + a)
	})
	if err == nil && (len(keys) == 0 || reverse) {
		err = bad("bad sort criteria")
	}
	return keys, err
}

// charsetArg reads SP charset, which must be UTF-8 or US-ASCII.
func charsetArg(p *wire.Parser) error {
	cs, err := spArg(p, p.AString)
	if err != nil {
		return err
	}
	if cs = strings.ToUpper(cs); cs != "UTF-8" && cs != "US-ASCII" {
		return no("BADCHARSET (UTF-8 US-ASCII)", "unsupported charset")
	}
	return nil
}

// sortInfo is what sorting and threading need of one message.
type sortInfo struct {
	i                  int // index in sel.msgs
	arrival, sent      time.Time
	size               int64
	from, to, cc, subj string
	reply              bool     // the subject had a Re:/Fwd: leader (RFC 5256 section 2.1)
	msgID              string   // Message-ID, for THREAD=REFERENCES
	refs               []string // References, or the first In-Reply-To id
}

func (s *session) sortInfo(i int) (sortInfo, error) {
	m := s.sel.msgs[i]
	hdr, mtime, err := s.sel.folder.ReadHeader(m.Base)
	if err != nil {
		return sortInfo{}, err
	}
	size, err := s.sel.folder.Size(m.Base)
	if err != nil {
		return sortInfo{}, err
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(hdr)))
	info := sortInfo{i: i, arrival: mtime, size: size}
	// RFC 5256 section 2.2: a missing or bad Date sorts as the arrival.
	if d, err := mail.ParseDate(h.Get("Date")); err == nil {
		info.sent = d
	} else {
		info.sent = mtime
	}
	info.from, info.to, info.cc = firstMailbox(h.Get("From")), firstMailbox(h.Get("To")), firstMailbox(h.Get("Cc"))
	info.subj = baseSubject(h.Get("Subject"))
	info.reply = info.subj != strings.ToLower(strings.Join(strings.Fields(h.Get("Subject")), " "))
	info.msgID = firstID(h.Get("Message-Id"))
	info.refs = msgIDs(h.Get("References"))
	if len(info.refs) == 0 {
		if id := firstID(h.Get("In-Reply-To")); id != "" {
			info.refs = []string{id}
		}
	}
	return info, nil
}

// firstMailbox is the local part of the first address, for FROM, TO and
// CC (RFC 5256 section 3), compared without case.
func firstMailbox(v string) string {
	list, err := mail.ParseAddressList(v)
	if err != nil || len(list) == 0 {
		return ""
	}
	local, _, _ := strings.Cut(list[0].Address, "@")
	return strings.ToLower(local)
}

// baseSubject extracts the base subject (RFC 5256 section 2.1): decoded,
// white space folded, "Re:", "Fwd:", "[list]" leaders and "(fwd)" trailers
// removed, "[fwd: ...]" unwrapped; compared without case.
func baseSubject(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = d
	}
	s = strings.Join(strings.Fields(s), " ")
	for {
		prev := s
		for strings.HasSuffix(strings.ToLower(s), "(fwd)") {
			s = strings.TrimSpace(s[:len(s)-5])
		}
		for {
			next := stripLeader(s)
			if next == s {
				break
			}
			s = next
		}
		low := strings.ToLower(s)
		if strings.HasPrefix(low, "[fwd:") && strings.HasSuffix(s, "]") {
			s = strings.TrimSpace(s[5 : len(s)-1])
		}
		if s == prev {
			return strings.ToLower(s)
		}
	}
}

// stripLeader removes one subj-blob or subj-refwd from the front of s.
func stripLeader(s string) string {
	s = strings.TrimLeft(s, " ")
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 && !strings.ContainsAny(s[1:end], "[") {
			if rest := strings.TrimLeft(s[end+1:], " "); rest != "" {
				return rest // a blob is removed only if something is left
			}
		}
	}
	low := strings.ToLower(s)
	for _, w := range []string{"re", "fwd", "fw"} {
		if !strings.HasPrefix(low, w) {
			continue
		}
		rest := strings.TrimLeft(s[len(w):], " ")
		if strings.HasPrefix(rest, "[") {
			if end := strings.IndexByte(rest, ']'); end > 0 {
				rest = strings.TrimLeft(rest[end+1:], " ")
			}
		}
		if strings.HasPrefix(rest, ":") {
			return strings.TrimLeft(rest[1:], " ")
		}
	}
	return s
}

func compareBy(a, b sortInfo, k sortKey) int {
	var c int
	switch k.name {
	case "ARRIVAL":
		c = a.arrival.Compare(b.arrival)
	case "DATE":
		c = a.sent.Compare(b.sent)
	case "SIZE":
		c = cmp.Compare(a.size, b.size)
	case "FROM":
		c = strings.Compare(a.from, b.from)
	case "TO":
		c = strings.Compare(a.to, b.to)
	case "CC":
		c = strings.Compare(a.cc, b.cc)
	case "SUBJECT":
		c = strings.Compare(a.subj, b.subj)
	}
	if k.reverse {
		c = -c
	}
	return c
}

// searchInfos runs the search keys and gathers sortInfo for the matches;
// mod is their highest mod-sequence when the keys have MODSEQ (RFC 7162
// sections 3.1.5 and 3.1.9), or 0.
func (s *session) searchInfos(p *wire.Parser) (infos []sortInfo, mod uint64, err error) {
	infos, key, idx, err := s.searchKeyInfos(p)
	if err == nil {
		mod = s.searchModSeq(key, idx)
	}
	return infos, mod, err
}

func (s *session) searchKeyInfos(p *wire.Parser) ([]sortInfo, *searchKey, []int, error) {
	if err := charsetArg(p); err != nil {
		return nil, nil, nil, err
	}
	key, err := parseSearch(p)
	if err != nil {
		return nil, nil, nil, err
	}
	idx, err := s.searchMatches(key)
	if err != nil {
		return nil, nil, nil, err
	}
	infos := make([]sortInfo, 0, len(idx))
	for _, i := range idx {
		info, err := s.sortInfo(i)
		if errors.Is(err, mailstore.ErrGone) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		infos = append(infos, info)
	}
	return infos, key, idx, nil
}

// RFC 5256 section 3: SORT (criteria) charset search-keys.
func cmdSort(s *session, c *command) error {
	err := c.p.SP()
	if err != nil {
		return err
	}
	keys, err := parseSortKeys(c.p)
	if err != nil {
		return err
	}
	infos, mod, err := s.searchInfos(c.p)
	if err != nil {
		return err
	}
	slices.SortStableFunc(infos, func(a, b sortInfo) int {
		for _, k := range keys {
			if r := compareBy(a, b, k); r != 0 {
				return r
			}
		}
		return cmp.Compare(a.i, b.i) // ties: sequence order
	})
	s.w.Raw("* SORT")
	for _, in := range infos {
		s.w.Raw(" " + s.number(in.i, c.uid))
	}
	if mod > 0 {
		s.w.Raw(" (MODSEQ " + u64(mod) + ")")
	}
	s.w.CRLF()
	return nil
}

func (s *session) number(i int, uid bool) string {
	if uid {
		return u32(s.sel.msgs[i].UID)
	}
	return u32(uint32(i + 1))
}

// RFC 5256 section 3: THREAD algorithm charset search-keys, with the
// ORDEREDSUBJECT and REFERENCES algorithms.
func cmdThread(s *session, c *command) error {
	alg, err := spArg(c.p, c.p.Atom)
	if err != nil {
		return err
	}
	alg = strings.ToUpper(alg)
	if alg != "ORDEREDSUBJECT" && alg != "REFERENCES" {
		return bad("unsupported threading algorithm " + alg)
	}
	if alg == "REFERENCES" {
		infos, _, err := s.searchInfos(c.p)
		if err != nil {
			return err
		}
		s.w.Raw("* THREAD ")
		for _, root := range threadReferences(infos) {
			s.w.Raw("(")
			s.writeThread(root, c.uid)
			s.w.Raw(")")
		}
		s.w.CRLF()
		return nil
	}
	infos, _, err := s.searchInfos(c.p)
	if err != nil {
		return err
	}
	// Sort by base subject and sent date; each subject is one thread, its
	// first message the parent of the others; threads in the order of
	// their first message's date.
	slices.SortStableFunc(infos, func(a, b sortInfo) int {
		if r := strings.Compare(a.subj, b.subj); r != 0 {
			return r
		}
		if r := a.sent.Compare(b.sent); r != 0 {
			return r
		}
		return cmp.Compare(a.i, b.i)
	})
	var threads [][]sortInfo
	for k, in := range infos {
		if k == 0 || in.subj != infos[k-1].subj {
			threads = append(threads, nil)
		}
		threads[len(threads)-1] = append(threads[len(threads)-1], in)
	}
	slices.SortStableFunc(threads, func(a, b []sortInfo) int {
		if r := a[0].sent.Compare(b[0].sent); r != 0 {
			return r
		}
		return cmp.Compare(a[0].i, b[0].i)
	})
	s.w.Raw("* THREAD ")
	for _, t := range threads {
		s.w.Raw("(" + s.number(t[0].i, c.uid))
		switch {
		case len(t) == 2:
			s.w.Raw(" " + s.number(t[1].i, c.uid))
		case len(t) > 2:
			s.w.SP()
			for _, child := range t[1:] {
				s.w.Raw("(" + s.number(child.i, c.uid) + ")")
			}
		}
		s.w.Raw(")")
	}
	s.w.CRLF()
	return nil
}
