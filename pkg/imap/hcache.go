package imap

import (
	"bufio"
	"bytes"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"mailsrv/pkg/mailstore"
)

// The header cache (package mailstore, hcache.go) answers header reads by
// the fields they need; these say which fields a FETCH or a SEARCH needs.

// envelopeFields are the header fields an ENVELOPE is made of (RFC 3501
// section 7.4.2).
var envelopeFields = []string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID"}

// fetchFields returns the header fields that header-only items need
// (headerOnly(its) is true): nil when they need the whole header.
func fetchFields(its []fetchItem) []string {
	fields := []string{}
	for _, it := range its {
		switch {
		case it.name == "ENVELOPE":
			fields = append(fields, envelopeFields...)
		case it.name == "RFC822.HEADER":
			return nil
		case it.sec != nil && it.sec.spec == "HEADER.FIELDS":
			fields = append(fields, it.sec.fields...)
		case it.sec != nil: // HEADER, HEADER.FIELDS.NOT
			return nil
		}
	}
	return fields
}

// fetched is what readFor read of one message.
type fetched struct {
	data  []byte
	mtime time.Time
	root  *part            // nil for a header alone until part() parses it
	kept  mailstore.Kept   // what the header cache kept (kept.go), when it answered
	keep  mailstore.Keeper // for what the FETCH derives, when keeps
	keeps bool
}

// part returns the parsed message, or its parsed header when only that
// was read.
func (m *fetched) part() *part {
	if m.root == nil {
		m.root = headerPart(m.data, nil)
	}
	return m.root
}

// How readFor reads a message for the items of a FETCH.
const (
	planWhole     = iota // the items need the body: the message is read
	planHeader           // the header is enough (headerOnly)
	planStructure        // the header and a BODYSTRUCTURE, kept or from the message
)

// readPlan returns how readFor reads for its, and the header fields it
// needs then (nil: all).
func readPlan(its []fetchItem) (int, []string) {
	var rest []fetchItem // the items but BODYSTRUCTURE
	for _, it := range its {
		if it.name != "BODYSTRUCTURE" {
			rest = append(rest, it)
		}
	}
	switch {
	case len(rest) == len(its) && headerOnly(its):
		return planHeader, fetchFields(its)
	case headerOnly(rest):
		return planStructure, fetchFields(rest)
	}
	return planWhole, nil
}

// readFor reads what the FETCH items of one message need: its header
// alone through the header cache when that is enough (what mail clients
// list folders with), with the ENVELOPE and BODYSTRUCTURE kept beside it
// (kept.go) when the header cache has them, or the whole message when a
// BODYSTRUCTURE was asked for and not kept, or when the items need the
// body. When keeps is set, keep keeps what the FETCH derives from what
// was read. run.plan says which.
func (s *session) readFor(base string, run *fetchRun) (fetched, error) {
	f := s.sel.folder
	switch run.plan {
	case planHeader:
		data, mtime, kept, keep, err := f.ReadHeaderKept(base, run.fields)
		if err != nil {
			return fetched{}, err
		}
		return fetched{data: data, mtime: mtime, kept: kept, keep: keep, keeps: true}, nil
	case planStructure:
		hdr, t, kept, keep, ok, err := f.CachedKept(base, run.fields)
		if err != nil {
			return fetched{}, err
		}
		if _, valid := pickKept(kept.Structure, false); ok && valid {
			return fetched{data: hdr, mtime: t, kept: kept, keep: keep, keeps: true}, nil
		}
		data, mtime, keepWhole, err := f.ReadWhole(base)
		if err != nil {
			return fetched{}, err
		}
		return fetched{data: data, mtime: mtime, root: parseMessage(data), keep: keepWhole, keeps: true}, nil
	}
	data, mtime, err := f.Read(base)
	if err != nil {
		return fetched{}, err
	}
	return fetched{data: data, mtime: mtime, root: parseMessage(data)}, nil
}

// searchFields returns the header fields that the keys of a search read
// from a message header (BODY and TEXT read the whole message anyway).
func searchFields(k *searchKey) []string {
	fields := []string{}
	switch k.op {
	case "HEADER":
		fields = append(fields, k.field)
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		fields = append(fields, "Date")
	}
	for _, kid := range k.kids {
		fields = append(fields, searchFields(kid)...)
	}
	return fields
}

// headerBatch starts a command that reads many headers (FETCH, SEARCH);
// the function it returns ends it, writing what the cache learned.
func (s *session) headerBatch(f *mailstore.Folder) func() {
	end := f.HeaderBatch()
	return func() {
		if err := end(); err != nil {
			s.log.Warn("header cache", "folder", f.Name, "err", err)
		}
	}
}

// headerPart parses a header block as parseMessage parses a message's
// header, without the MIME structure that header-only items and search
// keys do not use. With fields, the header holds only those fields (what
// a search reads). A header made of well-formed fields ended by a blank
// line is split here and its fields added as go-message's ReadHeader
// adds them (same key and value rules, first occurrence first), without
// the reader's buffers; any other goes through ReadHeader whole. The fuzz
// target FuzzHeaderPart holds the two to the same answers.
func headerPart(data []byte, fields []string) *part {
	p := &part{raw: data, hdrLen: headerLen(data)}
	if kvs, ok := splitFields(data[:p.hdrLen], fields); ok {
		var h textproto.Header
		for i := len(kvs) - 1; i >= 0; i-- { // ReadHeader keeps them last first
			h.AddRaw(kvs[i])
		}
		p.header = message.Header{Header: h}
		return p
	}
	// As parsePart reads it: the buffer's size changes what a last line
	// without its newline gives.
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data[:p.hdrLen])))
	if err == nil {
		p.header = message.Header{Header: h}
	}
	return p
}

// headerLen is the length of data's header, its blank line included:
// all of data when there is none.
func headerLen(data []byte) int {
	if bytes.HasPrefix(data, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return len(data)
}

// splitFields returns the raw fields (a line and its continuation lines,
// CRLF included) of a header, those named in fields or all for nil; false
// when the header is not made of well-formed fields (a name of printable
// US-ASCII but ':', RFC 5322 section 3.6.8) ended by a blank line.
func splitFields(hdr []byte, fields []string) ([][]byte, bool) {
	if !bytes.HasSuffix(hdr, []byte("\r\n")) || len(hdr) > 2 && !bytes.HasSuffix(hdr, []byte("\r\n\r\n")) {
		return nil, false
	}
	var out [][]byte
	in := false
	for rest := hdr; ; {
		i := bytes.Index(rest, []byte("\r\n")) + 2
		line := rest[:i]
		rest = rest[i:]
		switch {
		case i == 2:
			return out, true
		case line[0] == ' ' || line[0] == '\t':
			if len(out) == 0 && !in {
				if len(rest)+i == len(hdr) {
					return nil, false // continues nothing
				}
				continue // continues a field not kept
			}
			if in {
				k := len(out) - 1
				out[k] = out[k][:len(out[k])+i] // the field and its continuation are one slice
			}
		default:
			name, _, found := bytes.Cut(line, []byte(":"))
			if !found || len(name) == 0 || hasControl(name) {
				return nil, false
			}
			in = fields == nil
			for _, f := range fields {
				if len(f) == len(name) && strings.EqualFold(f, string(name)) {
					in = true
					break
				}
			}
			if in {
				out = append(out, line)
			}
		}
	}
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 {
			return true
		}
	}
	return false
}
