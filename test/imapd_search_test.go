package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// imaplibSearch searches with Python's imaplib, non-ASCII strings sent as
// literals with CHARSET UTF-8, and prints each result.
const imaplibSearch = `
import imaplib, sys
host, port, user, pw = sys.argv[1:5]
m = imaplib.IMAP4(host, int(port)); m.sock.settimeout(30)
m.login(user, pw)
m.select("INBOX", readonly=True)
for key, word in [("BODY", "zürich"), ("BODY", "CAFÉ"), ("SUBJECT", "köln"), ("SUBJECT", "σίσυφος"),
                  ("FROM", "MÜLLER"), ("TEXT", "naïve"), ("BODY", "nowhere-to-be-found"), ("BODY", "secretbinaryword")]:
    m.literal = word.encode("utf-8")
    typ, data = m.search("UTF-8", key)
    print(key, word, typ, data[0].decode())
typ, data = m.search("ISO-8859-1", "ALL")
print(typ, data[0].decode())
m.logout()
`

// Python's imaplib finds words in a base64 ISO-8859-1 body, a
// quoted-printable UTF-8 part and RFC 2047 encoded header fields.
func TestIMAPDSearchCharset(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "charset.eml"))
	_, addr := r.startIMAPD()
	host, port, _ := strings.Cut(addr, ":")
	out, err := python(t, imaplibSearch, host, port, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	want := `BODY zürich OK 2
BODY CAFÉ OK 2
SUBJECT köln OK 2
SUBJECT σίσυφος OK 2
FROM MÜLLER OK 2
TEXT naïve OK 2
BODY nowhere-to-be-found OK 
BODY secretbinaryword OK 
NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset
`
	if out != want {
		t.Errorf("imaplib:\n%s\nwant\n%s", out, want)
	}
}
