package imap

import (
	"bytes"
	"strconv"

	"mailsrv/pkg/imap/wire"
)

// The header cache (package mailstore, hkept.go) keeps the ENVELOPE and
// BODYSTRUCTURE a FETCH wrote, as IMAP text, so that a warm folder's FETCH
// parses no header and no address (net/mail's parser was a third of a
// warm FETCH ENVELOPE's CPU time, the header's parse another quarter).
//
// The text depends on the session in one way: a string with 8-bit bytes
// is a literal for an IMAP4rev1 client and a quoted string once UTF8=ACCEPT
// or IMAP4rev2 is enabled (wire.Writer's UTF8, RFC 6855 section 3). A kept
// item is therefore one of:
//
//	"=" text                   no 8-bit byte: the same text for every session
//	"2" len " " text7 text8    text7 (len bytes) for IMAP4rev1, text8 with UTF8 set
//
// so that each session gets what it would get from the message itself.
// TestKeptEnvelopes and FuzzKeptItem hold the kept text to the fresh one.

// renderer writes items into a buffer, once per FETCH command (a
// wire.Writer's buffer is 32 KB).
type renderer struct {
	buf bytes.Buffer
	w   *wire.Writer
}

func newRenderer() *renderer {
	r := &renderer{}
	r.w = wire.NewWriter(&r.buf)
	return r
}

// render returns what write writes in one mode; valid until the next call.
func (r *renderer) render(utf8 bool, write func(*wire.Writer)) []byte {
	r.buf.Reset()
	r.w.UTF8 = utf8
	write(r.w)
	_ = r.w.Flush() // a bytes.Buffer does not fail
	return r.buf.Bytes()
}

// kept returns the kept form of the item write writes (a new slice).
func (r *renderer) kept(write func(*wire.Writer)) []byte {
	text7 := r.render(false, write)
	if !has8bit(text7) {
		return append([]byte{'='}, text7...)
	}
	out := append([]byte("2"+strconv.Itoa(len(text7))+" "), text7...)
	return append(out, r.render(true, write)...)
}

// pickKept returns the text of a kept item for a session (utf8: the
// writer's UTF8); false when kept is not a kept item (none, or damaged).
func pickKept(kept []byte, utf8 bool) ([]byte, bool) {
	if len(kept) < 2 {
		return nil, false
	}
	switch kept[0] {
	case '=':
		return kept[1:], true
	case '2':
		sp := bytes.IndexByte(kept, ' ')
		if sp < 2 {
			return nil, false
		}
		n, err := strconv.Atoi(string(kept[1:sp]))
		if err != nil || n <= 0 || n >= len(kept)-sp-1 {
			return nil, false
		}
		if utf8 {
			return kept[sp+1+n:], true
		}
		return kept[sp+1 : sp+1+n], true
	}
	return nil, false
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
