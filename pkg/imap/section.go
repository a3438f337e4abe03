package imap

import (
	"bytes"
	"strings"
)

// extract returns the bytes of a section of the message (RFC 3501
// section 6.4.5, BODY[section]); false when the part does not exist.
func extract(root *part, sec *section) ([]byte, bool) {
	p, ok := findPart(root, sec.path)
	if !ok {
		return nil, false
	}
	switch sec.spec {
	case "":
		if len(sec.path) == 0 {
			return p.raw, true
		}
		return p.body(), true
	case "MIME":
		return p.raw[:p.hdrLen], true
	}
	// HEADER and TEXT of a part refer to the message it encapsulates.
	msg := p
	if len(sec.path) > 0 {
		if p.msg == nil {
			return nil, false
		}
		msg = p.msg
	}
	switch sec.spec {
	case "HEADER":
		return msg.raw[:msg.hdrLen], true
	case "TEXT":
		return msg.body(), true
	}
	return headerFields(msg.raw[:msg.hdrLen], sec.fields, sec.spec == "HEADER.FIELDS.NOT"), true
}

// findPart follows part numbers: the parts of a multipart, of the message
// inside a message/rfc822, and part 1 of anything else is itself.
func findPart(root *part, path []int) (*part, bool) {
	cur := root
	for k, n := range path {
		isMsg := k == 0
		if k > 0 && cur.msg != nil {
			cur, isMsg = cur.msg, true
		}
		switch {
		case cur.typ == "multipart" && len(cur.children) > 0:
			if n > len(cur.children) {
				return nil, false
			}
			cur = cur.children[n-1]
		case n == 1 && isMsg:
			// part 1 of a single-part message is its body
		default:
			return nil, false
		}
	}
	return cur, true
}

// headerFields returns the header lines (with their continuation lines)
// whose field name is in names, or not in names, and the blank line.
func headerFields(header []byte, names []string, not bool) []byte {
	want := map[string]bool{}
	for _, n := range names {
		want[strings.ToLower(n)] = true
	}
	var out bytes.Buffer
	keep := false
	for _, line := range bytes.SplitAfter(header, []byte("\n")) {
		if len(line) == 0 || bytes.Equal(line, []byte("\r\n")) {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, found := bytes.Cut(line, []byte(":"))
			keep = found && want[strings.ToLower(string(bytes.TrimSpace(name)))] != not
		}
		if keep {
			out.Write(line)
		}
	}
	out.WriteString("\r\n")
	return out.Bytes()
}
