package imap

import (
	"bytes"
	"net/textproto"
)

// SEARCH HEADER on a header as read (from the header cache, most often)
// matches the raw field lines in place: the header is not built into a
// go-message Header, and a value that is one line of ASCII without
// encoded words is compared where it lies, without a copy. Building a
// Header for each of 100,000 messages (a field struct, a map, the values
// unfolded into new strings) was about half of a warm search's time and
// most of its garbage. The answers are those of headerPart and
// matchHeaderParsed, which FuzzHeaderMatch holds it to: the same header
// shapes taken (splitFields'), the same key rule (go-message keeps fields
// by net/textproto's canonical key), the same value (go-message's
// trimAroundNewlines: each line trimmed of spaces and tabs, empty ones
// dropped, joined by one space), every occurrence of the field tried.

// headerMatcher is one HEADER key made ready for matchHeaderRaw.
type headerMatcher struct {
	canon string // the field name as go-message keys it
	valid bool   // canon is a token: names match it ignoring ASCII case
	value string
	buf   []byte // a folded value, unfolded (reused)
}

func newHeaderMatcher(field, value string) *headerMatcher {
	canon := textproto.CanonicalMIMEHeaderKey(field)
	valid := true
	for i := 0; i < len(canon); i++ {
		valid = valid && tokenByte(canon[i])
	}
	return &headerMatcher{canon: canon, valid: valid, value: value}
}

// tokenByte is net/textproto's validHeaderFieldByte (RFC 7230 tchar):
// CanonicalMIMEHeaderKey leaves a name with any other byte as it is.
func tokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c < 0x80 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// names reports whether a field name of a header keys the same field as
// the matcher's (CanonicalMIMEHeaderKey of both equal).
func (hm *headerMatcher) names(name []byte) bool {
	if len(name) != len(hm.canon) {
		return false
	}
	if !hm.valid {
		return string(name) == hm.canon // a name kept as it is
	}
	return equalFoldASCII(name, hm.canon) // both made canonical: same letters
}

// matchHeaderRaw reports whether a value of the matcher's field in data
// (a header, as headerPart takes it) contains its value, as
// matchHeaderParsed does on headerPart(data, ...); ok is false when data
// is not a header that splitFields takes (the caller parses it).
func (hm *headerMatcher) matchHeaderRaw(data []byte) (match, ok bool) {
	// The header ends at its first empty line (every CRLF ends a line:
	// the first CRLFCRLF, as headerLen finds it); a header without one
	// is not taken, nor one whose first line continues nothing.
	if len(data) > 0 && (data[0] == ' ' || data[0] == '\t') {
		return false, false
	}
	for off := 0; ; {
		start := off
		i := bytes.Index(data[off:], []byte("\r\n"))
		if i < 0 {
			return false, false
		}
		off += i + 2
		line := data[start:off]
		switch {
		case i == 0:
			return match, true // the blank line
		case line[0] == ' ' || line[0] == '\t':
			continue // a continuation, taken with its field below
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || hasControl(line[:colon]) {
			return false, false
		}
		if match || !hm.names(line[:colon]) {
			continue
		}
		end := off // the field's lines, continuations included
		for end < len(data) && (data[end] == ' ' || data[end] == '\t') {
			j := bytes.Index(data[end:], []byte("\r\n"))
			if j < 0 {
				return false, false
			}
			end += j + 2
		}
		match = hm.matchValue(data[start+colon+1 : end])
	}
}

// matchValue matches one field's value (what follows the colon, its CRLFs
// included) as go-message's value of it, decoded.
func (hm *headerMatcher) matchValue(v []byte) bool {
	if nl := bytes.IndexByte(v, '\n'); nl == len(v)-1 {
		v = trimSpaceTab(bytes.TrimSuffix(v[:nl], []byte("\r"))) // one line: most values
	} else {
		hm.buf = unfoldValue(hm.buf[:0], v)
		v = hm.buf
	}
	if bytes.Contains(v, []byte("=?")) || !asciiBytes(v) {
		return containsFold(decodeHeaderValue(string(v)), hm.value)
	}
	if !isASCII(hm.value) {
		return containsFold(string(v), hm.value)
	}
	return indexFoldASCII(v, hm.value) >= 0
}

// unfoldValue appends v as go-message's trimAroundNewlines makes it.
func unfoldValue(out, v []byte) []byte {
	for len(v) > 0 {
		l := v
		if nl := bytes.IndexByte(v, '\n'); nl >= 0 {
			l, v = v[:nl], v[nl+1:]
		} else {
			v = nil
		}
		l = trimSpaceTab(bytes.TrimSuffix(l, []byte("\r")))
		if len(l) == 0 {
			continue
		}
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, l...)
	}
	return out
}

// trimSpaceTab trims spaces and tabs, as go-message's trim.
func trimSpaceTab(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func asciiBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// equalFoldASCII is strings.EqualFold for ASCII text.
func equalFoldASCII[S string | []byte](a S, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := a[i], b[i]
		if x != y && (x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z') {
			return false
		}
	}
	return true
}
