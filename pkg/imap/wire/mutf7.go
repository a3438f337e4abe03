package wire

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Mailbox names are stored and shown to IMAP4rev1 clients in modified
// UTF-7 (RFC 3501 section 5.1.3): printable US-ASCII stands for itself
// except "&", written "&-"; any other run of characters is "&", their
// UTF-16 in base64 with "," for "/" and no padding, then "-". IMAP4rev2
// (RFC 9051 section 5.1) and UTF8=ACCEPT (RFC 6855 section 3) clients
// use UTF-8 instead; the session converts at the edge.

var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").
	WithPadding(base64.NoPadding).Strict()

// ErrMUTF7 is a string that is not canonical modified UTF-7.
var ErrMUTF7 = errors.New("not modified UTF-7")

// EncodeMUTF7 encodes a UTF-8 string in modified UTF-7. Invalid UTF-8
// bytes become U+FFFD.
func EncodeMUTF7(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c <= 0x7e {
			b.WriteByte(c)
			if c == '&' {
				b.WriteByte('-')
			}
			i++
			continue
		}
		j := i
		var units []uint16
		for j < len(s) && (s[j] < 0x20 || s[j] > 0x7e) {
			r, n := utf8.DecodeRuneInString(s[j:])
			units = utf16.AppendRune(units, r)
			j += n
		}
		raw := make([]byte, 0, 2*len(units))
		for _, u := range units {
			raw = append(raw, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		i = j
	}
	return b.String()
}

// DecodeMUTF7 decodes modified UTF-7 to UTF-8. It accepts only the
// canonical form that EncodeMUTF7 writes (no 8-bit bytes, no encoded
// printable ASCII, no two encoded runs side by side, no stray bits), so
// that EncodeMUTF7(DecodeMUTF7(s)) == s whenever it succeeds.
func DecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	prevEncoded := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			prevEncoded = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", ErrMUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			prevEncoded = false
			continue
		}
		if prevEncoded {
			return "", ErrMUTF7
		}
		if err := decodeRun(&b, enc); err != nil {
			return "", err
		}
		prevEncoded = true
	}
	return b.String(), nil
}

// decodeRun decodes the base64 between "&" and "-".
func decodeRun(b *strings.Builder, enc string) error {
	raw, err := mutf7.DecodeString(enc)
	if err != nil || len(raw) == 0 || len(raw)%2 != 0 || mutf7.EncodeToString(raw) != enc {
		return ErrMUTF7
	}
	units := make([]uint16, len(raw)/2)
	for k := range units {
		units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
	}
	for k := 0; k < len(units); k++ {
		u := units[k]
		var r rune
		switch {
		case utf16.IsSurrogate(rune(u)):
			if k+1 == len(units) {
				return ErrMUTF7
			}
			r = utf16.DecodeRune(rune(u), rune(units[k+1]))
			k++
			if r == utf8.RuneError {
				return ErrMUTF7
			}
		case u >= 0x20 && u <= 0x7e:
			return ErrMUTF7 // printable ASCII stands for itself
		default:
			r = rune(u)
		}
		b.WriteRune(r)
	}
	return nil
}

// decodeMixed decodes a name that is modified UTF-7 with raw UTF-8
// characters in it, as go-imap v2 writes names once a server advertises
// IMAP4rev2 ("&" escaped as "&-", other characters raw). An "&" that
// starts no valid shift sequence stands for itself.
func decodeMixed(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '&' {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end == 0 {
			b.WriteByte('&')
			i += 2
			continue
		}
		var run strings.Builder
		if end > 0 && decodeRun(&run, s[i+1:i+1+end]) == nil {
			b.WriteString(run.String())
			i += end + 2
			continue
		}
		b.WriteByte('&')
		i++
	}
	return b.String()
}
