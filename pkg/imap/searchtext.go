package imap

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// SEARCH matches text as a reader sees it (RFC 3501 section 6.4.4): header
// fields with their RFC 2047 encoded words decoded, text parts with their
// transfer encoding (base64, quoted-printable) undone and their charset
// converted to UTF-8, and both sides compared under Unicode simple case
// folding. Parts that are not text keep their bytes unless base64 or
// quoted-printable (then they are skipped or decoded without a charset).

// maxSearchText bounds the decoded text of one message that BODY and TEXT
// look at; what a message decodes to beyond it is not searched. The MIME
// depth and part count are bounded by parseMessage.
const maxSearchText = 4 << 20

// wordDecoder decodes RFC 2047 encoded words in any charset go-message
// knows (the standard library alone knows UTF-8, ISO-8859-1 and US-ASCII).
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeHeaderValue decodes the encoded words of one field value; a value
// that does not decode is kept as it is.
func decodeHeaderValue(v string) string {
	if !strings.Contains(v, "=?") {
		return v // no encoded word: most values, and no allocation
	}
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// headerText is a header block unfolded (RFC 5322 section 2.2.3), its
// encoded words decoded.
func headerText(raw []byte) string {
	s := strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t", "\n ", " ", "\n\t", "\t").Replace(string(raw))
	return decodeHeaderValue(s)
}

// textBudget is what remains of maxSearchText for one message.
type textBudget struct{ left int64 }

// bodyText appends the searchable text of p's body to b: each text leaf
// decoded, each attached message's header and body.
func bodyText(b *strings.Builder, p *part, budget *textBudget) {
	switch {
	case budget.left <= 0:
	case p.msg != nil:
		hdr := headerText(p.msg.raw[:p.msg.hdrLen])
		b.WriteString(hdr[:min(int64(len(hdr)), budget.left)])
		budget.left -= int64(len(hdr))
		bodyText(b, p.msg, budget)
	case len(p.children) > 0:
		for _, c := range p.children {
			bodyText(b, c, budget)
		}
	default:
		leafText(b, p, budget)
	}
}

// leafText appends one leaf's decoded text.
func leafText(b *strings.Builder, p *part, budget *textBudget) {
	var r io.Reader = bytes.NewReader(p.body())
	text := p.typ == "text" || p.typ == "multipart" // a multipart without boundary is text
	switch strings.ToLower(strings.TrimSpace(p.header.Get("Content-Transfer-Encoding"))) {
	case "base64":
		if !text {
			return // binary data: nothing to read in it
		}
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	if cs := strings.ToLower(p.params["charset"]); text && cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if cr, err := charset.Reader(cs, r); err == nil {
			r = cr
		}
	}
	// A decoding error ends the text there: what came before still counts.
	n, _ := io.Copy(b, io.LimitReader(r, budget.left))
	budget.left -= n
	if budget.left > 0 { // parts do not run together
		b.WriteByte('\n')
		budget.left--
	}
}

// messageText is what TEXT searches: the header and the body, decoded.
func messageText(root *part) string {
	var b strings.Builder
	budget := &textBudget{maxSearchText}
	hdr := headerText(root.raw[:root.hdrLen])
	b.WriteString(hdr[:min(int64(len(hdr)), budget.left)])
	budget.left -= int64(len(hdr))
	bodyText(&b, root, budget)
	return b.String()
}

// messageBody is what BODY searches.
func messageBody(root *part) string {
	var b strings.Builder
	bodyText(&b, root, &textBudget{maxSearchText})
	return b.String()
}

// foldCase maps each rune to one representative of its simple case
// folding orbit (the smallest rune in it: "A" for "a", "K" for the Kelvin
// sign, "Σ" for "ς"), so that two strings equal under simple folding map
// to the same string. Invalid UTF-8 becomes U+FFFD.
func foldCase(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		case r >= utf8.RuneSelf:
			low := r
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				low = min(low, f)
			}
			r = low
		}
		b.WriteRune(r)
	}
	return b.String()
}

// containsFold reports whether sub is in s, under simple case folding.
// When both are ASCII (most header values and keys) it compares in place,
// without folding copies.
func containsFold(s, sub string) bool {
	if isASCII(s) && isASCII(sub) {
		return indexFoldASCII(s, sub) >= 0
	}
	return strings.Contains(foldCase(s), foldCase(sub))
}

// indexFoldASCII is strings.Index ignoring ASCII case, in a string or in
// bytes (searchraw.go).
func indexFoldASCII[S string | []byte](s S, sub string) int {
	if sub == "" {
		return 0
	}
	first := sub[0]
	isLetter := first|0x20 >= 'a' && first|0x20 <= 'z'
	if isLetter {
		first |= 0x20 // lower case
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		c := s[i]
		if isLetter {
			c |= 0x20
		}
		if c == first && equalFoldASCII(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
