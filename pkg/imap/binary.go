package imap

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"

	"mailsrv/pkg/imap/wire"
)

// BINARY (RFC 3516): parts sent decoded from their Content-Transfer-
// Encoding, and APPEND of literal8 data (in cmdAppend).
// binaryPart returns the decoded content of a section, nil (not an error)
// when the part does not exist, or NO [UNKNOWN-CTE] for an encoding it
// cannot decode (RFC 3516 section 4.3).
func binaryPart(root *part, sec *section) ([]byte, error) {
	if len(sec.path) == 0 {
		return root.raw, nil
	}
	p, ok := findPart(root, sec.path)
	if !ok {
		return nil, nil
	}
	body := p.body()
	if p.typ == "multipart" || p.msg != nil {
		return body, nil
	}
	switch enc := strings.ToLower(strings.TrimSpace(p.header.Get("Content-Transfer-Encoding"))); enc {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, no("UNKNOWN-CTE", "part is not valid base64")
		}
		return out[:n], nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, no("UNKNOWN-CTE", "part is not valid quoted-printable")
		}
		return out, nil
	default:
		return nil, no("UNKNOWN-CTE", "unknown Content-Transfer-Encoding "+enc)
	}
}

// writeBinary writes BINARY[...] (as a literal8 when the data holds NUL)
// or BINARY.SIZE[...].
func writeBinary(w *wire.Writer, it fetchItem, b []byte) {
	w.Raw(it.name + "[" + it.sec.String() + "]")
	if it.name == "BINARY.SIZE" {
		w.SP().Num64(int64(len(b)))
		return
	}
	if it.partial {
		w.Raw("<").Num64(it.off).Raw(">")
		b = cut(b, it.off, it.count)
	}
	w.SP()
	switch {
	case b == nil:
		w.Raw("NIL")
	case bytes.IndexByte(b, 0) >= 0:
		w.Raw("~").Literal(b)
	default:
		w.Literal(b)
	}
}
