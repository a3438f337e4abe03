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
		" MODSEQ 12345 NOT MODSEQ \"/flags/\\\\Seen\" all 9223372036854775807\r\n",
		" OR MODSEQ \"/flags/$x\" priv 0 MODSEQ {4+}\r\n/f/x shared 1\r\n",
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
		" (FLAGS MODSEQ) (CHANGEDSINCE 12345 VANISHED)\r\n", " MODSEQ (CHANGEDSINCE 0)\r\n",
		" (UID) (VANISHED CHANGEDSINCE 9223372036854775808)\r\n", " FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)\r\n",
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
		if mods, err := parseFetchModifiers(p); err == nil && mods.changed && mods.changedSince == 0 {
			t.Fatal("CHANGEDSINCE 0 accepted")
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

// FuzzCondstoreArgs parses the arguments RFC 7162 adds: SELECT/EXAMINE
// parameters ((CONDSTORE), (QRESYNC (...))) and STORE's UNCHANGEDSINCE.
func FuzzCondstoreArgs(f *testing.F) {
	for _, s := range []string{
		" (CONDSTORE)\r\n", " (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
		" (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
		" (QRESYNC (1 1 (1:2 3:4)))\r\n", " (QRESYNC (0 1))\r\n", " (CONDSTORE QRESYNC (1 1 *))\r\n",
		"(UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n", "(UNCHANGEDSINCE 0) FLAGS ()\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if p := fuzzParser(data); p != nil {
			if sp, err := parseSelectParams(p); err == nil && sp.qresync != nil && (sp.qresync.validity == 0 || sp.qresync.mod == 0) {
				t.Fatalf("zero UIDVALIDITY or mod-sequence accepted: %+v", sp.qresync)
			}
		}
		if p := fuzzParser(data); p != nil {
			_, _, _ = storeModifier(p)
		}
	})
}
