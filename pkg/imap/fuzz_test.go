package imap

import (
	"bytes"
	"testing"

	"mailsrv/pkg/imap/wire"
)

// fuzzParser reads one command from data (literals allowed) for the
// argument parsers below.
func fuzzParser(data []byte) *wire.Parser {
	r := wire.NewReader(bytes.NewReader(data), wire.Limits{MaxLine: 4096, MaxLiteral: 1024,
		MaxDiscard: 4096, MaxDepth: 16, MaxParts: 8})
	c, err := r.ReadCommand()
	if err != nil {
		return nil
	}
	return wire.NewParser(c, 16)
}

func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{
		" ALL\r\n", " OR (SEEN FROM \"x\") NOT 2:4\r\n", " HEADER X-Y {3+}\r\nabc UID 1:*\r\n",
		" SINCE 1-Feb-2023 LARGER 10 (((DELETED)))\r\n", " CHARSET UTF-8 TEXT x\r\n", " NOT NOT NOT\r\n",
		" SENTON 31-Dec-1999 KEYWORD $Forwarded UNKEYWORD x SMALLER 4294967296\r\n",
		" CHARSET UTF-8 SUBJECT {5+}\r\nk\xc3\xb6ln BODY \"stra\xc3\x9fe\"\r\n", " CHARSET US-ASCII OR TEXT \"\xff\xfe\" FROM {0}\r\n\r\n",
		" HEADER Subject \"=?UTF-8?B?w7Y=?=\" NOT BODY {4+}\r\n\xce\xa3\xcf\x82\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := fuzzParser(data)
		if p == nil {
			return
		}
		k, err := parseSearch(p)
		if err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}

func FuzzParseFetch(f *testing.F) {
	for _, s := range []string{
		" ALL\r\n", " (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From \"To\")]<0.10>)\r\n",
		" BODY[]\r\n", " (BODYSTRUCTURE ENVELOPE RFC822.SIZE UID INTERNALDATE BODY[3.MIME])\r\n",
		" BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.TEXT]\r\n", " BODY[HEADER.FIELDS.NOT ()]\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := fuzzParser(data)
		if p == nil {
			return
		}
		items, err := parseFetchItems(p)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.sec != nil {
				_ = it.sec.String()
				if len(it.sec.path) > maxMIMEDepth+1 {
					t.Fatalf("section path of %d parts", len(it.sec.path))
				}
			}
		}
	})
}

// FuzzMIME parses hostile messages into the MIME tree and writes their
// BODYSTRUCTURE and ENVELOPE: no panic, bounded depth.
func FuzzMIME(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody\r\n--a--\r\n"))
	f.Add([]byte("From: \"x\" <a@b>, bad\r\nTo: <>\r\n\r\n"))
	f.Add([]byte("\r\n"))
	f.Add([]byte("Subject: =?ISO-8859-1?Q?caf=E9?= =?x-bogus?B?!!?=\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n8NLJ18XU\r\n--b\r\nContent-Type: text/html; charset=utf-16\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=FF=FEa=00=\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := parseMessage(data)
		var b bytes.Buffer
		w := wire.NewWriter(&b)
		writeBodyStructure(w, root, true)
		writeEnvelope(w, root.header)
		_, _ = extract(root, &section{path: []int{1, 1, 2}, spec: "HEADER"})
		_, _ = binaryPart(root, &section{path: []int{1, 2}})
		if text := messageText(root); len(text) > 2*maxSearchText {
			t.Fatalf("%d bytes of text to search", len(text))
		}
		_ = containsFold(messageBody(root), "\u212a\u03c2")
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	})
}
