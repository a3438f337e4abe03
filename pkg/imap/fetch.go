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
	gone := false
	for _, i := range s.sel.resolve(set, c.uid) {
		if mods.changed && s.sel.modOf(i) <= mods.changedSince {
			continue
		}
		err := s.fetchOne(i, its)
		if errors.Is(err, mailstore.ErrGone) {
			gone = true
			continue
		}
		if err != nil {
			return err
		}
	}
	if gone {
		return no("EXPUNGEISSUED", "some messages were expunged meanwhile")
	}
	return nil
}

// fetchOne writes the FETCH response of the message at index i.
func (s *session) fetchOne(i int, its []fetchItem) error {
	sel := s.sel
	v := &sel.msgs[i]
	if v.gone {
		return mailstore.ErrGone
	}
	var data, structure []byte // structure: a kept BODYSTRUCTURE (hcache.go)
	var mtime time.Time
	var root *part
	setSeen := false
	for _, it := range its {
		switch it.name {
		case "FLAGS", "UID", "RFC822.SIZE", "MODSEQ":
			continue
		}
		if data == nil {
			var err error
			if data, mtime, root, structure, err = s.readFor(v.Base, its); err != nil {
				return err
			}
		}
		if (it.name == "BODY" && it.sec != nil || it.name == "BINARY" || it.name == "RFC822" || it.name == "RFC822.TEXT") &&
			!it.peek && !sel.readOnly && !v.Flags.Has('S') {
			setSeen = true
		}
	}
	decoded := map[int][]byte{}
	for k, it := range its {
		if strings.HasPrefix(it.name, "BINARY") {
			b, err := binaryPart(root, it.sec)
			if err != nil {
				return err
			}
			decoded[k] = b
		}
	}
	if setSeen {
		if err := s.setFlags(i, func(f mailstore.Flags) mailstore.Flags { return f.With("S", "") }); err != nil {
			return err
		}
		its = append(its, fetchItem{name: "FLAGS"})
		if s.condstore {
			its = append(its, fetchItem{name: "MODSEQ"}) // RFC 7162 section 3.1.3
		}
	}
	w := s.w
	w.Raw("* " + strconv.Itoa(i+1) + " FETCH (")
	done := map[string]bool{}
	for k, it := range its {
		if it.sec == nil && done[it.name] {
			continue
		}
		done[it.name] = true
		if k > 0 {
			w.SP()
		}
		if b, ok := decoded[k]; ok {
			writeBinary(w, it, b)
			continue
		}
		if it.name == "BODYSTRUCTURE" && structure != nil {
			w.Raw("BODYSTRUCTURE " + string(structure))
			continue
		}
		if err := s.fetchItem(v.Message, it, data, mtime, root); err != nil {
			return err
		}
	}
	w.Raw(")\r\n")
	return nil
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
			s.sel.msgs[i].mod = s.sel.modOf(i)
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
