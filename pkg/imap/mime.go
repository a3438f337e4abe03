package imap

import (
	"bufio"
	"bytes"
	"mime"
	"net/mail"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"mailsrv/pkg/imap/wire"
)

// MIME limits: deeper or more numerous parts are treated as opaque
// leaves, so that a hostile message cannot make BODYSTRUCTURE explode.
const (
	maxMIMEDepth = 16
	maxMIMEParts = 2000
)

// part is one MIME entity of a message (RFC 2045), found in the raw bytes
// (CRLF line endings) so that sections can be cut exactly.
type part struct {
	raw      []byte // header and body
	hdrLen   int    // bytes of header, blank line included
	header   message.Header
	typ, sub string
	params   map[string]string
	children []*part // multipart/*
	msg      *part   // message/rfc822: the message inside
}

func (p *part) body() []byte { return p.raw[p.hdrLen:] }

// parseMessage splits a message into its MIME tree.
func parseMessage(raw []byte) *part {
	budget := maxMIMEParts
	return parsePart(raw, 0, "text/plain", &budget)
}

func parsePart(raw []byte, depth int, defType string, budget *int) *part {
	p := &part{raw: raw}
	switch i := bytes.Index(raw, []byte("\r\n\r\n")); {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		p.hdrLen = 2
	case i >= 0:
		p.hdrLen = i + 4
	default:
		p.hdrLen = len(raw)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw[:p.hdrLen])))
	if err == nil {
		p.header = message.Header{Header: h}
	}
	ct := defType
	if p.header.Has("Content-Type") {
		ct = p.header.Get("Content-Type")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	p.typ, p.sub, _ = strings.Cut(mt, "/")
	p.params = params
	*budget--
	if depth >= maxMIMEDepth || *budget <= 0 {
		return p
	}
	switch {
	case p.typ == "multipart" && params["boundary"] != "":
		childType := "text/plain"
		if p.sub == "digest" {
			childType = "message/rfc822"
		}
		for _, b := range splitMultipart(p.body(), params["boundary"]) {
			p.children = append(p.children, parsePart(b, depth+1, childType, budget))
		}
	case p.typ == "message" && p.sub == "rfc822":
		p.msg = parsePart(p.body(), depth+1, "text/plain", budget)
	}
	return p
}

// splitMultipart returns the bodies between the boundary lines of a
// multipart body (RFC 2046 section 5.1.1); the CRLF before a boundary
// belongs to the boundary.
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	for off := 0; off < len(body); {
		end := bytes.IndexByte(body[off:], '\n')
		next := len(body)
		if end >= 0 {
			next = off + end + 1
		}
		line := bytes.TrimRight(body[off:next], " \t\r\n")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				if start >= 0 {
					stop := max(off-2, start)
					parts = append(parts, body[start:stop])
				}
				if len(rest) == 2 {
					return parts
				}
				start = next
			}
		}
		off = next
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts
}

// writeEnvelope writes the ENVELOPE of a message header (RFC 3501
// section 7.4.2).
func writeEnvelope(w *wire.Writer, h message.Header) {
	get := func(k string) (string, bool) {
		if !h.Has(k) {
			return "", false
		}
		return h.Get(k), true
	}
	w.Raw("(")
	w.NString(get("Date")).SP()
	w.NString(get("Subject")).SP()
	from := h.Get("From")
	fromList := addrList(from) // parsed once: Sender and Reply-To default to it
	writeAddrList(w, fromList).SP()
	for _, k := range []string{"Sender", "Reply-To"} {
		if v := h.Get(k); strings.TrimSpace(v) != "" {
			writeAddrs(w, v).SP()
		} else {
			writeAddrList(w, fromList).SP()
		}
	}
	writeAddrs(w, h.Get("To")).SP()
	writeAddrs(w, h.Get("Cc")).SP()
	writeAddrs(w, h.Get("Bcc")).SP()
	w.NString(get("In-Reply-To")).SP()
	w.NString(get("Message-Id"))
	w.Raw(")")
}

// writeAddrs writes an address list as (name adl mailbox host) entries,
// or NIL. A list that does not parse is NIL; names with 8-bit text are
// sent as RFC 2047 encoded words, as in a header.
func writeAddrs(w *wire.Writer, v string) *wire.Writer {
	return writeAddrList(w, addrList(v))
}

// addrList parses an address list; nil when it is empty or does not parse.
func addrList(v string) []*mail.Address {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	list, err := mail.ParseAddressList(v)
	if err != nil {
		return nil
	}
	return list
}

// writeAddrList writes what writeAddrs writes, for a parsed list.
func writeAddrList(w *wire.Writer, list []*mail.Address) *wire.Writer {
	if len(list) == 0 {
		return w.Raw("NIL")
	}
	w.Raw("(")
	for _, a := range list {
		local, host, _ := strings.Cut(a.Address, "@")
		name := a.Name
		if name != "" && !isASCII(name) {
			name = mime.QEncoding.Encode("utf-8", name)
		}
		w.Raw("(").NString(name, name != "").Raw(" NIL ").String(local).SP().String(host).Raw(")")
	}
	return w.Raw(")")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// writeBodyStructure writes BODY (ext false) or BODYSTRUCTURE (ext true)
// of a part (RFC 3501 section 7.4.2).
func writeBodyStructure(w *wire.Writer, p *part, ext bool) {
	w.Raw("(")
	if p.typ == "multipart" && len(p.children) > 0 {
		for _, c := range p.children {
			writeBodyStructure(w, c, ext)
		}
		w.SP().String(p.sub)
		if ext {
			w.SP()
			writeParams(w, p.params)
			w.SP()
			writeExt(w, p)
		}
		w.Raw(")")
		return
	}
	typ, sub, params := p.typ, p.sub, p.params
	if typ == "multipart" { // no boundary: an opaque leaf
		typ, sub, params = "text", "plain", nil
	}
	if typ == "text" && params["charset"] == "" {
		params = map[string]string{"charset": "us-ascii"}
		for k, v := range p.params {
			params[k] = v
		}
	}
	w.String(typ).SP().String(sub).SP()
	writeParams(w, params)
	w.SP().NString(hdr(p, "Content-Id")).SP().NString(hdr(p, "Content-Description")).SP()
	enc := strings.ToUpper(strings.TrimSpace(p.header.Get("Content-Transfer-Encoding")))
	if enc == "" {
		enc = "7BIT"
	}
	body := p.body()
	w.String(enc).SP().Num64(int64(len(body)))
	lines := int64(bytes.Count(body, []byte("\n")))
	switch {
	case p.msg != nil:
		w.SP()
		writeEnvelope(w, p.msg.header)
		w.SP()
		writeBodyStructure(w, p.msg, ext)
		w.SP().Num64(lines)
	case typ == "text":
		w.SP().Num64(lines)
	}
	if ext {
		w.SP().NString(hdr(p, "Content-Md5")).SP()
		writeExt(w, p)
	}
	w.Raw(")")
}

func hdr(p *part, k string) (string, bool) {
	if !p.header.Has(k) {
		return "", false
	}
	return p.header.Get(k), true
}

// writeExt writes disposition, language and location.
func writeExt(w *wire.Writer, p *part) {
	disp, params, err := p.header.ContentDisposition()
	if err != nil || disp == "" {
		w.Raw("NIL")
	} else {
		w.Raw("(").String(disp).SP()
		writeParams(w, params)
		w.Raw(")")
	}
	w.SP().NString(hdr(p, "Content-Language")).SP().NString(hdr(p, "Content-Location"))
}

func writeParams(w *wire.Writer, params map[string]string) {
	if len(params) == 0 {
		w.Raw("NIL")
		return
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.Raw("(")
	for i, k := range keys {
		if i > 0 {
			w.SP()
		}
		w.String(k).SP().String(params[k])
	}
	w.Raw(")")
}
