package wire

import (
	"bytes"
	"testing"
)

// The examples of RFC 3501 section 5.1.3 and RFC 2152, and names that
// must be refused because they are not the canonical form.
func TestMUTF7(t *testing.T) {
	for _, tc := range []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"&", "&-"},
		{"Tom & Jerry", "Tom &- Jerry"},
		{"été", "&AOk-t&AOk-"},
		{"😀", "&2D3eAA-"},
		{"a&b€", "a&-b&IKw-"},
	} {
		if got := EncodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		if got, err := DecodeMUTF7(tc.mutf7); err != nil || got != tc.utf8 {
			t.Errorf("DecodeMUTF7(%q) = %q, %v, want %q", tc.mutf7, got, err, tc.utf8)
		}
	}
	for _, bad := range []string{
		"&", "a&AOk", "&AOk-&AOk-", "&AGE-", "&AOl-", "&2D0-", "&3gA-", "&A-", "été", "a\x01b", "&AOk=-",
	} {
		if got, err := DecodeMUTF7(bad); err == nil {
			t.Errorf("DecodeMUTF7(%q) = %q, want an error", bad, got)
		}
	}
}

// A client's name: UTF-8 after ENABLE, 7-bit taken as modified UTF-7
// before, 8-bit UTF-8 encoded in any case (before ENABLE as modified UTF-7
// with raw characters, the way go-imap v2 writes them), control
// characters left for the store to refuse.
func TestToMUTF7(t *testing.T) {
	for _, tc := range []struct {
		in   string
		utf8 bool
		want string
	}{
		{"&AOk-", false, "&AOk-"},
		{"&AOk-", true, "&-AOk-"},
		{"été", false, "&AOk-t&AOk-"},
		{"été", true, "&AOk-t&AOk-"},
		{"Café &- Co", false, "Caf&AOk- &- Co"},
		{"Café &- Co", true, "Caf&AOk- &-- Co"},
		{"été &AOk- & &ZeVnLIqe", false, "&AOk-t&AOk- &AOk- &- &-ZeVnLIqe"},
		{"é&AGE-", false, "&AOk-&-AGE-"},
		{"\xff", false, "\xff"},
		{"a\x01é", true, "a\x01é"},
		{"Lists/*", true, "Lists/*"},
		// NFD (e + U+0301, as macOS sends it) names the NFC folder.
		{"e\u0301te\u0301", true, "&AOk-t&AOk-"},
		{"e\u0301te\u0301", false, "&AOk-t&AOk-"},
	} {
		if got := ToMUTF7(tc.in, tc.utf8); got != tc.want {
			t.Errorf("ToMUTF7(%q, %v) = %q, want %q", tc.in, tc.utf8, got, tc.want)
		}
	}
}

func TestQuotedUTF8(t *testing.T) {
	c := &Command{Lines: [][]byte{[]byte("\"caf\xc3\xa9\" \"\xff\"")}}
	p := NewParser(c, 4)
	p.UTF8 = true
	if s, err := p.String(); err != nil || s != "café" {
		t.Fatalf("String() = %q, %v", s, err)
	}
	_ = p.SP()
	if _, err := p.String(); !IsSyntax(err) {
		t.Fatalf("invalid UTF-8 after ENABLE: %v, want a syntax error", err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.String("café").SP().Mailbox("&AOk-t&AOk-").SP()
	w.UTF8 = true
	w.String("café").SP().Mailbox("&AOk-t&AOk-").SP().Mailbox("a&b").SP().String("\xff")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "{5}\r\ncafé &AOk-t&AOk- \"café\" \"été\" a&b {1}\r\n\xff"
	if buf.String() != want {
		t.Fatalf("wrote %q, want %q", buf.String(), want)
	}
}

// FuzzMUTF7: decoding never panics, what decodes is canonical, what is
// encoded decodes back, and a client's name that ToMUTF7 converts becomes
// valid modified UTF-7.
func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "&AOk-t&AOk-", "&-", "&2D3eAA-", "&AOk-&AOk-", "&Jjo,-", "a&b", "&ZeVnLIqe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := DecodeMUTF7(s)
		if err == nil && EncodeMUTF7(d) != s {
			t.Fatalf("%q decodes to %q, which encodes to %q", s, d, EncodeMUTF7(d))
		}
		e := EncodeMUTF7(s)
		if back, err := DecodeMUTF7(e); err != nil || back != toValid(s) {
			t.Fatalf("%q encodes to %q, which decodes to %q, %v", s, e, back, err)
		}
		for _, u := range []bool{false, true} {
			if m := ToMUTF7(s, u); m != s {
				if _, err := DecodeMUTF7(m); err != nil {
					t.Fatalf("ToMUTF7(%q, %v) = %q, not modified UTF-7: %v", s, u, m, err)
				}
			}
		}
	})
}

// toValid is s with invalid UTF-8 replaced by U+FFFD, one per byte, as
// EncodeMUTF7 reads it.
func toValid(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
