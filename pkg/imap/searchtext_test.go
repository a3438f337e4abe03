package imap

import (
	"strings"
	"testing"
)

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		s, sub string
		want   bool
	}{
		{"Hello World", "WORLD", true},
		{"Σίσυφος", "ΣΊΣΥΦΟΣ", true},    // final sigma and capital sigma
		{"Kelvin", "\u212aELVIN", true}, // the Kelvin sign folds with K
		{"Straße", "STRAẞE", true},      // capital sharp s
		{"Straße", "STRASSE", false},    // full folding, not simple
		{"naïve", "naive", false},
		{"Zürich", "zürich", true},
		{"abc", "", true},
		{"bad \xff utf-8", "UTF-8", true},
	} {
		if got := containsFold(tc.s, tc.sub); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v", tc.s, tc.sub, got)
		}
	}
}

// Each part's transfer encoding and charset, and what happens to text
// that cannot be decoded.
func TestMessageText(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		in, out   []string // found in BODY, and not
	}{
		{"base64 latin1", "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\nWvxyaWNo\r\n",
			[]string{"Zürich"}, []string{"WvxyaWNo"}},
		{"qp windows-1252", "Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=80 5 and =93quoted=94\r\n",
			[]string{"€ 5", "“quoted”"}, []string{"=80"}},
		{"koi8-r 8bit", "Content-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n",
			[]string{"привет"}, nil},
		{"unknown charset kept", "Content-Type: text/plain; charset=x-unheard-of\r\n\r\nplain words\r\n",
			[]string{"plain words"}, nil},
		{"broken base64 keeps the start", "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8g!!!!d29ybGQ=\r\n",
			[]string{"hello"}, []string{"world"}},
		{"binary attachment skipped", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\ntext part\r\n--x\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\naGlkZGVu\r\n--x--\r\n",
			[]string{"text part"}, []string{"hidden", "aGlkZGVu"}},
		{"attached message", "Content-Type: message/rfc822\r\n\r\nSubject: =?utf-8?q?inn=C3=A9r?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n",
			[]string{"innér", "café"}, nil},
	} {
		body := messageBody(parseMessage([]byte(tc.msg)))
		for _, w := range tc.in {
			if !containsFold(body, w) {
				t.Errorf("%s: %q not in %q", tc.name, w, body)
			}
		}
		for _, w := range tc.out {
			if containsFold(body, w) {
				t.Errorf("%s: %q in %q", tc.name, w, body)
			}
		}
	}
}

// TEXT sees the decoded header; BODY does not.
func TestMessageTextHeader(t *testing.T) {
	root := parseMessage([]byte("Subject: =?ISO-8859-1?Q?caf=E9?=\r\n =?UTF-8?B?w6nDqQ==?=\r\n\r\nbody\r\n"))
	if text := messageText(root); !strings.Contains(text, "Subject: cafééé") {
		t.Errorf("TEXT: %q", text)
	}
	if body := messageBody(root); strings.Contains(body, "café") {
		t.Errorf("BODY: %q", body)
	}
}

// The decoded text searched is bounded: a word past maxSearchText is not
// found, one before is.
func TestMessageTextBounded(t *testing.T) {
	filler := strings.Repeat("0123456789abcdef\r\n", maxSearchText/18+1)
	msg := "Subject: big\r\n\r\nearly\r\n" + filler + "late\r\n"
	body := messageBody(parseMessage([]byte(msg)))
	if len(body) > maxSearchText+1 {
		t.Errorf("%d bytes of text, limit %d", len(body), maxSearchText)
	}
	if !strings.Contains(body, "early") || strings.Contains(body, "late") {
		t.Errorf("early/late: %v %v", strings.Contains(body, "early"), strings.Contains(body, "late"))
	}
	if text := messageText(parseMessage([]byte(msg))); len(text) > maxSearchText+1 {
		t.Errorf("TEXT: %d bytes, limit %d", len(text), maxSearchText)
	}
}

// The ASCII fast path of containsFold answers as folding both does.
func FuzzContainsFold(f *testing.F) {
	for _, s := range [][2]string{{"Hello World", "wORLD"}, {"a@b", "`B"}, {"[x]", "{X}"}, {"Kelvin", "\u212a"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, s, sub string) {
		want := strings.Contains(foldCase(s), foldCase(sub))
		if got := containsFold(s, sub); got != want {
			t.Fatalf("containsFold(%q, %q) = %v, folding both says %v", s, sub, got, want)
		}
	})
}
