package imap

import (
	"errors"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// SEARCH (RFC 3501 section 6.4.4) and UID SEARCH.
func init() {
	commands["SEARCH"] = handler{cmdSearch, selectedS}
}

// searchKey is one node of a parsed search.
type searchKey struct {
	op    string // see parseSearchKey
	flag  byte   // Maildir letter for FLAG/UNFLAG
	set   wire.SeqSet
	field string // HEADER field name
	value string
	date  time.Time
	size  int64
	mod   uint64 // MODSEQ (RFC 7162 section 3.1.5)
	kids  []*searchKey
	hm    *headerMatcher // HEADER, made at its first use (searchraw.go)
}

// parseSearch reads the search keys after SEARCH (and CHARSET), ANDed.
func parseSearch(p *wire.Parser) (*searchKey, error) {
	all := &searchKey{op: "AND"}
	for !p.AtEnd() {
		if err := p.SP(); err != nil {
			return nil, err
		}
		k, err := parseSearchKey(p)
		if err != nil {
			return nil, err
		}
		all.kids = append(all.kids, k)
	}
	if len(all.kids) == 0 {
		return nil, bad("missing search key")
	}
	return all, nil
}

var flagKeys = map[string]struct {
	letter byte
	set    bool
}{
	"ANSWERED": {'R', true}, "DELETED": {'T', true}, "DRAFT": {'D', true}, "FLAGGED": {'F', true},
	"SEEN": {'S', true}, "UNANSWERED": {'R', false}, "UNDELETED": {'T', false},
	"UNDRAFT": {'D', false}, "UNFLAGGED": {'F', false}, "UNSEEN": {'S', false},
}

var headerKeys = map[string]string{"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}

func parseSearchKey(p *wire.Parser) (*searchKey, error) {
	if p.Peek() == '(' {
		k := &searchKey{op: "AND"}
		err := p.List(func() error {
			kid, err := parseSearchKey(p)
			k.kids = append(k.kids, kid)
			return err
		})
		return k, err
	}
	if c := p.Peek(); c == '*' || c == '$' || c >= '0' && c <= '9' {
		set, err := p.SeqSet()
		return &searchKey{op: "SEQ", set: set}, err
	}
	a, err := p.Atom()
	if err != nil {
		return nil, err
	}
	name := strings.ToUpper(a)
	k := &searchKey{op: name}
	if f, ok := flagKeys[name]; ok {
		k.op, k.flag = "UNFLAG", f.letter
		if f.set {
			k.op = "FLAG"
		}
		return k, nil
	}
	if h, ok := headerKeys[name]; ok {
		k.op, k.field = "HEADER", h
		k.value, err = spArg(p, p.AString)
		return k, err
	}
	switch name {
	case "ALL", "NEW", "OLD", "RECENT", "UNRECENT":
		return k, nil
	case "BODY", "TEXT", "KEYWORD", "UNKEYWORD":
		k.value, err = spArg(p, p.AString)
	case "HEADER":
		if k.field, err = spArg(p, p.AString); err == nil {
			k.value, err = spArg(p, p.AString)
		}
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		var d string
		if d, err = spArg(p, p.AString); err == nil {
			if k.date, err = time.Parse("_2-Jan-2006", d); err != nil {
				err = bad("invalid date " + strconv.Quote(d))
			}
		}
	case "LARGER", "SMALLER":
		if err = p.SP(); err == nil {
			k.size, err = p.Number64()
		}
	case "UID":
		if err = p.SP(); err == nil {
			k.set, err = p.SeqSet()
		}
	case "MODSEQ":
		err = parseModSeqKey(p, k)
	case "NOT", "OR":
		if err := p.Enter(); err != nil {
			return nil, err
		}
		defer p.Leave()
		for range map[string]int{"NOT": 1, "OR": 2}[name] {
			if err := p.SP(); err != nil {
				return nil, err
			}
			kid, err := parseSearchKey(p)
			if err != nil {
				return nil, err
			}
			k.kids = append(k.kids, kid)
		}
	default:
		return nil, bad("unknown search key " + name)
	}
	return k, err
}

func spArg(p *wire.Parser, f func() (string, error)) (string, error) {
	if err := p.SP(); err != nil {
		return "", err
	}
	return f()
}

// searchReturn holds SEARCH RETURN options (RFC 4731 ESEARCH, RFC 5182
// SEARCHRES).
type searchReturn struct {
	esearch                    bool // RETURN was given
	min, max, all, count, save bool
}

func parseReturn(p *wire.Parser) (searchReturn, error) {
	r := searchReturn{esearch: true}
	if err := p.SP(); err != nil {
		return r, err
	}
	if _, err := p.Atom(); err != nil {
		return r, err
	}
	if err := p.SP(); err != nil {
		return r, err
	}
	err := p.List(func() error {
		a, err := p.Atom()
		switch strings.ToUpper(a) {
		case "MIN":
			r.min = true
		case "MAX":
			r.max = true
		case "ALL":
			r.all = true
		case "COUNT":
			r.count = true
		case "SAVE":
			r.save = true
		default:
			return bad("unknown SEARCH RETURN option " + a)
		}
		return err
	})
	if !r.min && !r.max && !r.count && !r.save {
		r.all = true // RFC 4731 section 3.1: RETURN () means ALL
	}
	return r, err
}

func cmdSearch(s *session, c *command) error {
	p := c.p
	var ret searchReturn
	if strings.HasPrefix(strings.ToUpper(p.Rest()), " RETURN ") {
		var err error
		if ret, err = parseReturn(p); err != nil {
			return err
		}
	}
	if err := s.rev2Search(p, &ret); err != nil { // rev2.go
		return err
	}
	if strings.HasPrefix(strings.ToUpper(p.Rest()), " CHARSET ") {
		_ = p.SP()
		_, _ = p.Atom()
		cs, err := spArg(p, p.AString)
		if err != nil {
			return err
		}
		if cs = strings.ToUpper(cs); cs != "UTF-8" && cs != "US-ASCII" {
			return no("BADCHARSET (UTF-8 US-ASCII)", "unsupported charset")
		}
	}
	key, err := parseSearch(c.p)
	if err != nil {
		return err
	}
	idx, err := s.searchMatches(key)
	if err != nil {
		return err
	}
	sel := s.sel
	nums := make([]uint32, len(idx))
	for k, i := range idx {
		nums[k] = uint32(i + 1)
		if c.uid {
			nums[k] = sel.msgs[i].UID
		}
	}
	if ret.save {
		sel.saved = saveResult(sel, idx, ret)
	}
	mod := s.searchModSeq(key, idx)
	switch {
	case !ret.esearch:
		s.w.Raw("* SEARCH")
		for _, n := range nums {
			s.w.Raw(" " + u32(n))
		}
		if mod > 0 {
			s.w.Raw(" (MODSEQ " + u64(mod) + ")")
		}
		s.w.CRLF()
	case ret.min || ret.max || ret.all || ret.count:
		s.writeESearch(c, ret, nums, mod)
	}
	return nil
}

func (s *session) searchMatches(key *searchKey) ([]int, error) {
	if usesModSeq(key) {
		if err := s.enableCondstore(); err != nil {
			return nil, err
		}
	}
	var idx []int
	defer s.headerBatch(s.sel.folder)()
	// Each header is matched, then dropped: the cache may reuse buffers.
	s.sel.folder.ReuseHeaderBuffers()
	fields := searchFields(key) // hcache.go
	ev := &evaluator{}
	for i := range s.sel.msgs {
		if s.sel.isGone(i) {
			continue
		}
		*ev = evaluator{s: s, i: i, fields: fields}
		match, err := ev.match(key)
		if errors.Is(err, mailstore.ErrGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if match {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

// saveResult is what SAVE keeps for "$" (RFC 5182 section 2.1): all
// matches, or only the lowest and highest when MIN or MAX come without ALL
// or COUNT. It is kept as UIDs, so that expunges cannot shift it.
func saveResult(sel *selected, idx []int, ret searchReturn) map[uint32]bool {
	saved := map[uint32]bool{}
	if len(idx) == 0 {
		return saved
	}
	if (ret.min || ret.max) && !ret.all && !ret.count {
		if ret.min {
			saved[sel.msgs[idx[0]].UID] = true
		}
		if ret.max {
			saved[sel.msgs[idx[len(idx)-1]].UID] = true
		}
		return saved
	}
	for _, i := range idx {
		saved[sel.msgs[i].UID] = true
	}
	return saved
}

// writeESearch answers in the RFC 4731 form.
func (s *session) writeESearch(c *command, ret searchReturn, nums []uint32, mod uint64) {
	s.w.Raw(`* ESEARCH (TAG `).String(c.tag).Raw(")")
	if c.uid {
		s.w.Raw(" UID")
	}
	if len(nums) > 0 {
		if ret.min {
			s.w.Raw(" MIN " + u32(nums[0]))
		}
		if ret.max {
			s.w.Raw(" MAX " + u32(nums[len(nums)-1]))
		}
		if ret.all {
			s.w.Raw(" ALL " + uidSet(nums))
		}
	}
	if ret.count {
		s.w.Raw(" COUNT " + strconv.Itoa(len(nums)))
	}
	if mod > 0 {
		s.w.Raw(" MODSEQ " + u64(mod)) // RFC 7162 section 3.1.10
	}
	s.w.CRLF()
}

// evaluator matches keys against one message, reading it only when a key
// needs its contents.
type evaluator struct {
	s     *session
	i     int
	data  []byte
	mtime time.Time
	root  *part
	full  bool // data is the whole message, not only its header
	// body and text are the decoded, case-folded text that BODY and TEXT
	// search (searchtext.go), made once per message.
	body, text *string
	// fields are the header fields the search reads (searchFields)
	fields []string
}

// load reads the message: only its header when the key needs no more.
func (ev *evaluator) load(k *searchKey) error {
	whole := k.op == "BODY" || k.op == "TEXT"
	if ev.data != nil && (ev.full || !whole) {
		return nil
	}
	var err error
	base := ev.s.sel.msgs[ev.i].Base
	if whole {
		ev.data, ev.mtime, err = ev.s.sel.folder.Read(base)
		ev.full = true
	} else {
		ev.data, ev.mtime, err = ev.s.sel.folder.ReadHeaderFields(base, ev.fields)
	}
	ev.root = nil
	return err
}

// part returns the message as parsed: its header alone when only that
// was read.
func (ev *evaluator) part() *part {
	if ev.root == nil && ev.full {
		ev.root = parseMessage(ev.data)
	} else if ev.root == nil {
		ev.root = headerPart(ev.data, ev.fields) // hcache.go
	}
	return ev.root
}

func (ev *evaluator) match(k *searchKey) (bool, error) {
	sel := ev.s.sel
	m := sel.msgs[ev.i]
	switch k.op {
	case "AND":
		for _, kid := range k.kids {
			if ok, err := ev.match(kid); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	case "OR":
		a, err := ev.match(k.kids[0])
		if a || err != nil {
			return a, err
		}
		return ev.match(k.kids[1])
	case "NOT":
		a, err := ev.match(k.kids[0])
		return !a, err
	case "ALL":
		return true, nil
	case "FLAG":
		return m.Flags.Has(k.flag), nil
	case "UNFLAG":
		return !m.Flags.Has(k.flag), nil
	case "RECENT":
		return sel.recent[m.UID], nil
	case "UNRECENT", "OLD":
		return !sel.recent[m.UID], nil
	case "NEW":
		return sel.recent[m.UID] && !m.Flags.Has('S'), nil
	case "KEYWORD", "UNKEYWORD":
		l, err := sel.folder.Letters([]string{k.value}, false)
		if err != nil {
			return false, flagError(err)
		}
		has := l != "" && m.Flags.Has(l[0])
		return has == (k.op == "KEYWORD"), nil
	case "SEQ", "UID":
		if k.set.Saved {
			return sel.saved[m.UID], nil
		}
		if k.op == "SEQ" {
			return k.set.Contains(uint32(ev.i+1), uint32(len(sel.msgs))), nil
		}
		return k.set.Contains(m.UID, sel.maxUID()), nil
	case "MODSEQ":
		return sel.ms != nil && sel.ms.Of(m.UID) >= k.mod, nil
	case "LARGER", "SMALLER":
		n, err := sel.folder.Size(m.Base)
		if k.op == "LARGER" {
			return n > k.size, err
		}
		return n < k.size, err
	}
	if err := ev.load(k); err != nil {
		return false, err
	}
	if k.op == "HEADER" && !ev.full {
		if k.hm == nil {
			k.hm = newHeaderMatcher(k.field, k.value)
		}
		if match, ok := k.hm.matchHeaderRaw(ev.data); ok {
			return match, nil
		}
	}
	return ev.matchContent(k), nil
}

func (ev *evaluator) matchContent(k *searchKey) bool {
	root := ev.part()
	h := root.header
	switch k.op {
	case "HEADER":
		return matchHeaderParsed(h, k.field, k.value)
	case "BODY":
		if ev.body == nil {
			b := foldCase(messageBody(root))
			ev.body = &b
		}
		return strings.Contains(*ev.body, foldCase(k.value))
	case "TEXT":
		if ev.text == nil {
			t := foldCase(messageText(root))
			ev.text = &t
		}
		return strings.Contains(*ev.text, foldCase(k.value))
	case "BEFORE", "ON", "SINCE":
		return compareDay(ev.mtime, k.date, k.op)
	}
	sent, err := mail.ParseDate(h.Get("Date"))
	if err != nil {
		return false
	}
	return compareDay(sent, k.date, strings.TrimPrefix(k.op, "SENT"))
}

// matchHeaderParsed reports whether a value of field in h, decoded,
// contains value (matchHeaderRaw gives the same answers on raw lines).
func matchHeaderParsed(h message.Header, field, value string) bool {
	for _, v := range h.Values(field) {
		if containsFold(decodeHeaderValue(v), value) {
			return true
		}
	}
	return false
}

// compareDay compares the calendar day of t (in its own zone) with day,
// as RFC 3501 asks ("disregarding time and timezone").
func compareDay(t, day time.Time, op string) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch op {
	case "BEFORE":
		return d.Before(day)
	case "ON":
		return d.Equal(day)
	}
	return !d.Before(day)
}
