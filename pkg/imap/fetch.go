package imap

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// FETCH (RFC 3501 section 6.4.5) and UID FETCH.
func init() {
	commands["FETCH"] = handler{cmdFetch, selectedS}
}

// fetchItem is one requested data item.
type fetchItem struct {
	name    string   // ENVELOPE, FLAGS, ..., BODY (with sec), RFC822, RFC822.HEADER, RFC822.TEXT
	sec     *section // for BODY[...]
	peek    bool     // does not set \Seen
	partial bool
	off     int64
	count   int64
}

// section is a BODY[...] section (RFC 3501 section 6.4.5).
type section struct {
	path   []int
	spec   string // "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
	fields []string
}

func isKeyChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '8'
}

func parseFetchItems(p *wire.Parser) ([]fetchItem, error) {
	if err := p.SP(); err != nil {
		return nil, err
	}
	if p.Peek() != '(' {
		name := strings.ToUpper(p.Token(isKeyChar))
		switch name {
		case "ALL":
			return items("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"), nil
		case "FAST":
			return items("FLAGS", "INTERNALDATE", "RFC822.SIZE"), nil
		case "FULL":
			return items("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"), nil
		}
		it, err := parseFetchItem(p, name)
		return []fetchItem{it}, err
	}
	var out []fetchItem
	err := p.List(func() error {
		it, err := parseFetchItem(p, strings.ToUpper(p.Token(isKeyChar)))
		out = append(out, it)
		return err
	})
	return out, err
}

func items(names ...string) []fetchItem {
	var out []fetchItem
	for _, n := range names {
		out = append(out, fetchItem{name: n})
	}
	return out
}

func parseFetchItem(p *wire.Parser, name string) (fetchItem, error) {
	it := fetchItem{name: name}
	switch name {
	case "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "UID", "RFC822", "RFC822.TEXT", "MODSEQ":
		return it, nil
	case "RFC822.HEADER":
		it.peek = true
		return it, nil
	case "BODY", "BODY.PEEK":
		if p.Peek() != '[' {
			if name == "BODY.PEEK" {
				return it, bad("BODY.PEEK needs a section")
			}
			return it, nil
		}
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		if p.Peek() != '[' {
			return it, bad(name + " needs a section")
		}
	default:
		return it, bad("unknown FETCH item " + strconv.Quote(name))
	}
	it.peek = strings.HasSuffix(name, ".PEEK")
	it.name = strings.TrimSuffix(name, ".PEEK")
	sec, err := parseSection(p)
	if err != nil {
		return it, err
	}
	if strings.HasPrefix(it.name, "BINARY") && sec.spec != "" {
		// RFC 3516 section 4.2: section-binary is part numbers only.
		return it, bad("BINARY takes part numbers only")
	}
	it.sec = sec
	if it.name == "BINARY.SIZE" && p.Peek() == '<' {
		return it, bad("BINARY.SIZE takes no partial range")
	}
	if p.Accept('<') {
		it.partial = true
		if it.off, err = p.Number64(); err == nil {
			err = p.Expect('.')
		}
		if err == nil {
			it.count, err = p.Number64()
		}
		if err == nil && it.count == 0 {
			err = bad("partial length must not be 0")
		}
		if err == nil {
			err = p.Expect('>')
		}
	}
	return it, err
}

func parseSection(p *wire.Parser) (*section, error) {
	if err := p.Expect('['); err != nil {
		return nil, err
	}
	sec := &section{}
	tok := strings.ToUpper(p.Token(isKeyChar))
	for tok != "" && tok[0] >= '0' && tok[0] <= '9' {
		num, rest, _ := strings.Cut(tok, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 || len(sec.path) >= maxMIMEDepth+1 {
			return nil, bad("invalid section part number")
		}
		sec.path = append(sec.path, n)
		tok = rest
	}
	switch tok {
	case "", "HEADER", "TEXT":
	case "MIME":
		if len(sec.path) == 0 {
			return nil, bad("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if err := p.SP(); err != nil {
			return nil, err
		}
		err := p.List(func() error {
			f, err := p.AString()
			sec.fields = append(sec.fields, f)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(sec.fields) == 0 {
			return nil, bad("empty header list")
		}
	default:
		return nil, bad("invalid section " + tok)
	}
	sec.spec = tok
	return sec, p.Expect(']')
}

func cmdFetch(s *session, c *command) error {
	set, err := seqArg(c)
	if err != nil {
		return err
	}
	its, err := parseFetchItems(c.p)
	var mods fetchMods
	if err == nil {
		mods, err = parseFetchModifiers(c.p)
	}
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	if mods.vanished && (!c.uid || !s.qresync || !mods.changed) {
		// RFC 7162 section 3.2.6.
		return bad("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled")
	}
	if err := s.sel.checkSeq(set, c.uid); err != nil {
		return err
	}
	if mods.changed {
		its = append(its, fetchItem{name: "MODSEQ"}) // RFC 7162 section 3.1.4.1
	}
	if mods.changed || wantsModSeq(its) {
		if err := s.enableCondstore(); err != nil {
			return err
		}
	}
	if c.uid {
		its = append([]fetchItem{{name: "UID"}}, its...)
	}
	if mods.vanished {
		var known *wire.SeqSet
		if !set.Saved {
			known = &set
		}
		s.earlierVanished(mods.changedSince, known, 0)
	}
	defer s.headerBatch(s.sel.folder)()
	run := newFetchRun(its)
	gone := false
	for _, sp := range s.sel.spans(set, c.uid) {
		for i := sp.lo; i < sp.hi; i++ {
			if mods.changed && s.sel.modOf(i) <= mods.changedSince {
				continue
			}
			err := s.fetchOne(run, i)
			if errors.Is(err, mailstore.ErrGone) {
				gone = true
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	if gone {
		return no("EXPUNGEISSUED", "some messages were expunged meanwhile")
	}
	return nil
}

// fetchRun is what the messages of one FETCH command share.
type fetchRun struct {
	its    []fetchItem
	skip   []bool     // an item written already (dedup)
	light  bool       // no item reads the message
	binary bool       // some item is BINARY or BINARY.SIZE
	plan   int        // how readFor reads (hcache.go)
	fields []string   // and the header fields it needs
	flags  []flagText // "FLAGS (...)" of messages not \Recent, by flags
	buf    []byte     // numbers
	r      *renderer  // items kept for the header cache
}

// flagText is the FLAGS item of messages with the flags of key (flagKey).
type flagText struct {
	key  uint64
	text []byte
}

func newFetchRun(its []fetchItem) *fetchRun {
	run := &fetchRun{its: its, skip: dedup(its), light: true}
	run.plan, run.fields = readPlan(its)
	for _, it := range its {
		switch it.name {
		case "FLAGS", "UID", "RFC822.SIZE", "MODSEQ":
		default:
			run.light = false
		}
		run.binary = run.binary || strings.HasPrefix(it.name, "BINARY")
	}
	return run
}

// dedup returns which items are written already by an earlier one of the
// same name (an item with a section is always written).
func dedup(its []fetchItem) []bool {
	skip := make([]bool, len(its))
	done := map[string]bool{}
	for k, it := range its {
		skip[k] = it.sec == nil && done[it.name]
		done[it.name] = true
	}
	return skip
}

// fetchOne writes the FETCH response of the message at index i.
func (s *session) fetchOne(run *fetchRun, i int) error {
	sel := s.sel
	if sel.isGone(i) {
		return mailstore.ErrGone
	}
	v := sel.msgs[i] // a copy: setFlags below may give msgs a new array
	its, skip := run.its, run.skip
	var m fetched
	read, setSeen := false, false
	for _, it := range its {
		if run.light {
			break
		}
		switch it.name {
		case "FLAGS", "UID", "RFC822.SIZE", "MODSEQ":
			continue
		}
		if !read {
			var err error
			if m, err = s.readFor(v.Base, run); err != nil {
				return err
			}
			read = true
		}
		if (it.name == "BODY" && it.sec != nil || it.name == "BINARY" || it.name == "RFC822" || it.name == "RFC822.TEXT") &&
			!it.peek && !sel.readOnly && !v.Flags.Has('S') {
			setSeen = true
		}
	}
	var decoded [][]byte
	if run.binary {
		decoded = make([][]byte, len(its))
		for k, it := range its {
			if strings.HasPrefix(it.name, "BINARY") {
				b, err := binaryPart(m.part(), it.sec)
				if err != nil {
					return err
				}
				decoded[k] = b
			}
		}
	}
	if setSeen {
		if err := s.setFlags(i, func(f mailstore.Flags) mailstore.Flags { return f.With("S", "") }); err != nil {
			return err
		}
		v = sel.msgs[i]
		its = append(its[:len(its):len(its)], fetchItem{name: "FLAGS"})
		if s.condstore {
			its = append(its, fetchItem{name: "MODSEQ"}) // RFC 7162 section 3.1.3
		}
		skip = dedup(its)
	}
	// FLAGS and UID are added to b, written with what follows: a
	// FETCH of 100,000 messages' flags is mostly this loop.
	w := s.w
	b := strconv.AppendInt(append(run.buf[:0], "* "...), int64(i+1), 10)
	b = append(b, " FETCH ("...)
	var learned mailstore.Kept // for the header cache
	for k, it := range its {
		if skip[k] {
			continue
		}
		if k > 0 {
			b = append(b, ' ')
		}
		switch it.name {
		case "FLAGS":
			b = append(b, run.flagsOf(sel, v)...)
			continue
		case "UID":
			b = strconv.AppendUint(append(b, "UID "...), uint64(v.UID), 10)
			continue
		}
		w.Bytes(b)
		b = b[:0]
		if decoded != nil && strings.HasPrefix(it.name, "BINARY") {
			writeBinary(w, it, decoded[k])
			continue
		}
		switch it.name {
		case "ENVELOPE", "BODYSTRUCTURE":
			if s.writeKept(run, it.name, &m, &learned) {
				continue
			}
		}
		var root *part
		if read && it.name != "INTERNALDATE" {
			root = m.part()
		}
		if err := s.fetchItem(v, it, m.data, m.mtime, root); err != nil {
			return err
		}
	}
	run.buf = append(b, ")\r\n"...)
	w.Bytes(run.buf)
	if learned.Envelope != nil || learned.Structure != nil {
		m.keep.Keep(learned)
	}
	return nil
}

// writeKept writes an ENVELOPE or a BODYSTRUCTURE kept by the header
// cache, or renders it and adds it to learned when the cache can keep
// it; false when it must be written from the message as it is.
func (s *session) writeKept(run *fetchRun, name string, m *fetched, learned *mailstore.Kept) bool {
	kept := m.kept.Envelope
	if name == "BODYSTRUCTURE" {
		kept = m.kept.Structure
	}
	text, ok := pickKept(kept, s.w.UTF8)
	if !ok && m.keeps {
		if run.r == nil {
			run.r = newRenderer()
		}
		if name == "ENVELOPE" {
			root := m.part()
			learned.Envelope = run.r.kept(func(w *wire.Writer) { writeEnvelope(w, root.header) })
			text, ok = pickKept(learned.Envelope, s.w.UTF8)
		} else if m.root != nil { // the whole message (a header alone has no structure)
			learned.Structure = run.r.kept(func(w *wire.Writer) { writeBodyStructure(w, m.root, true) })
			text, ok = pickKept(learned.Structure, s.w.UTF8)
		}
	}
	if ok {
		s.w.Raw(name).SP().Bytes(text)
	}
	return ok
}

// flagsOf returns "FLAGS (...)" for m (flagList's), the same slice for
// the messages with the same flags. A folder's messages have a few sets
// of flags, found by a key made of their letters (hashing the flags for a
// map was half of a FETCH of 100,000 messages' flags; comparing them as
// strings, a third).
func (run *fetchRun) flagsOf(sel *selected, m mailstore.Message) []byte {
	key, ok := flagKey(m.Flags)
	if ok && !sel.recent[m.UID] { // \Recent is per message, not per set of flags
		for _, ft := range run.flags {
			if ft.key == key {
				return ft.text
			}
		}
	} else {
		ok = false
	}
	b := []byte("FLAGS " + sel.flagList(m))
	if ok && len(run.flags) < 64 {
		run.flags = append(run.flags, flagText{key, b})
	}
	return b
}

// flagKey returns a key that flags of letters in ascending order (as
// Maildir names have them) are the only ones to have: a bit per letter
// A-Z and a-z; false for other flags (their order is kept in FLAGS).
func flagKey(fl mailstore.Flags) (uint64, bool) {
	var key uint64
	last := byte(0)
	for i := 0; i < len(fl); i++ {
		c := fl[i]
		if c <= last {
			return 0, false
		}
		switch {
		case c >= 'A' && c <= 'Z':
			key |= 1 << (c - 'A')
		case c >= 'a' && c <= 'z':
			key |= 1 << (26 + c - 'a')
		default:
			return 0, false
		}
		last = c
	}
	return key, true
}

func (s *session) fetchItem(m mailstore.Message, it fetchItem, data []byte, mtime time.Time, root *part) error {
	w := s.w
	switch it.name {
	case "FLAGS":
		w.Raw("FLAGS " + s.sel.flagList(m))
	case "UID":
		w.Raw("UID " + u32(m.UID))
	case "MODSEQ":
		// RFC 7162 section 3.1.4.2.
		i := s.sel.seqOf(m.UID)
		w.Raw("MODSEQ (" + u64(s.sel.modOf(i)) + ")")
		if i >= 0 {
			s.sel.setMod(m.UID, s.sel.modOf(i))
		}
	case "RFC822.SIZE":
		n, err := s.sel.folder.Size(m.Base)
		if err != nil {
			return err
		}
		w.Raw("RFC822.SIZE ").Num64(n)
	case "INTERNALDATE":
		w.Raw(`INTERNALDATE "` + mtime.Format("02-Jan-2006 15:04:05 -0700") + `"`)
	case "ENVELOPE":
		w.Raw("ENVELOPE ")
		writeEnvelope(w, root.header)
	case "BODYSTRUCTURE":
		w.Raw("BODYSTRUCTURE ")
		writeBodyStructure(w, root, true)
	case "RFC822":
		w.Raw("RFC822 ").Literal(data)
	case "RFC822.HEADER":
		w.Raw("RFC822.HEADER ").Literal(root.raw[:root.hdrLen])
	case "RFC822.TEXT":
		w.Raw("RFC822.TEXT ").Literal(root.body())
	case "BODY":
		if it.sec == nil {
			w.Raw("BODY ")
			writeBodyStructure(w, root, false)
			return nil
		}
		b, ok := extract(root, it.sec)
		w.Raw("BODY[" + it.sec.String() + "]")
		if it.partial {
			w.Raw("<").Num64(it.off).Raw(">")
			b = cut(b, it.off, it.count)
		}
		w.SP()
		if !ok {
			w.Raw("NIL")
		} else {
			w.Literal(b)
		}
	}
	return nil
}

// headerOnly reports whether the items need no more than the message
// header: then the body is not read.
func headerOnly(its []fetchItem) bool {
	for _, it := range its {
		switch {
		case it.name == "FLAGS", it.name == "UID", it.name == "RFC822.SIZE", it.name == "MODSEQ",
			it.name == "INTERNALDATE", it.name == "ENVELOPE", it.name == "RFC822.HEADER":
		case it.name == "BODY" && it.sec != nil && len(it.sec.path) == 0 &&
			strings.HasPrefix(it.sec.spec, "HEADER"):
		default:
			return false
		}
	}
	return true
}

func cut(b []byte, off, count int64) []byte {
	if off >= int64(len(b)) {
		return nil
	}
	b = b[off:]
	if count < int64(len(b)) {
		b = b[:count]
	}
	return b
}

// String formats a section as it is echoed in the response.
func (sec *section) String() string {
	var parts []string
	for _, n := range sec.path {
		parts = append(parts, strconv.Itoa(n))
	}
	if sec.spec != "" {
		parts = append(parts, sec.spec)
	}
	s := strings.Join(parts, ".")
	if len(sec.fields) > 0 {
		var q []string
		for _, f := range sec.fields {
			q = append(q, quoteField(f))
		}
		s += " (" + strings.Join(q, " ") + ")"
	}
	return s
}

func quoteField(f string) string {
	for i := 0; i < len(f); i++ {
		if c := f[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return strconv.Quote(f)
		}
	}
	return strings.ToUpper(f)
}
