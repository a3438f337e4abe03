package mailstore

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"testing"
)

// indexText makes an index file with right checksums around body, whose
// head is its first four lines (or all of it).
func indexText(body string) []byte {
	head := len(body)
	for i, n := 0, 0; i < len(body); i++ {
		if body[i] == '\n' {
			if n++; n == 4 {
				head = i + 1
				break
			}
		}
	}
	return fmt.Appendf(nil, "%s %08x %d %08x %d\n%s", indexMagic, crc32.Checksum([]byte(body), castagnoli), len(body),
		crc32.Checksum([]byte(body[:head]), castagnoli), head, body)
}

// FuzzCacheFiles reads anything as a folder index and as a header cache
// file: neither may panic, and what they accept must hold together. The
// files are on disk, not from the network, but any process (or a disk
// fault) may leave anything there.
func FuzzCacheFiles(f *testing.F) {
	f.Add(indexText("S 1 2 3 4 5 6 7 8 9 3\nU 10 60\nN 1 0 1700000000 3 0 0 -1\nmailsrv-uidlist 1 V1700000000 N3 Gabc\n1 cur/1700000000.M1P1Q1.h,S=10:2,S\n2 1700000001.M2P1Q2.h\n"))
	f.Add(indexText("S 1 2 3 4 5 6 7 8 9 3\nU 10 60\nN 1 1 1 2 1 0 -1\nmailsrv-uidlist 1 V1 N1\n1 cur/a:2,\n1 cur/a:2,\n"))
	f.Add(indexText("S x\n"))
	var hc bytes.Buffer
	hc.WriteString(hcMagic)
	hc.Write(appendRecord(nil, "1700000000.M1P1Q1.h,S=10", hcEntry{ino: 5, size: 10, mtime: 77, stamp: dirStamp{1, 2, 3, 4}},
		[]byte("Subject: a\r\n\r\n")))
	hc.Write(appendRecord(nil, "b", hcEntry{whole: true}, []byte("From: x\r\n\r\n")))
	f.Add(hc.Bytes())
	f.Add([]byte(hcMagic + "0000beef 12\nnot a record"))
	f.Add([]byte("Subject: x\r\nFrom: y\r\n  z\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		xf, herr := readIndexHead(bytes.NewReader(data))
		if x, err := parseIndex(data); err == nil {
			if herr != nil || xf.head.sum != x.sum || xf.head.stamps != x.stamps || xf.head.ul.header != x.ul.header {
				t.Fatalf("the head alone says otherwise than the whole file: %v", herr)
			}
			f := &Folder{}
			f.adopt(x)
			f.load()
			for base, rel := range f.names {
				if b, _ := splitName(rel[min(4, len(rel)):]); rel[:min(4, len(rel))] != "cur/" || b != base {
					t.Fatalf("index accepted a name without its line: %q %q", base, rel)
				}
			}
			for _, m := range x.msgs {
				if _, ok := f.names[m.Base]; !ok {
					t.Fatalf("message %d %q of the snapshot has no file", m.UID, m.Base)
				}
			}
			x.ul.index()
			for _, e := range x.ul.order {
				if uid, ok := x.ul.uids[e.base]; !ok || uid > e.uid {
					t.Fatalf("base %q: UID %d, first line %d", e.base, uid, e.uid)
				}
			}
		}
		c := newHeaderCache()
		c.parse(data, true)
		for _, sl := range c.m {
			if sl.off < 0 || sl.off+int64(sl.n) > int64(len(data)) {
				t.Fatalf("slot %+v outside %d bytes", sl, len(data))
			}
			rec := data[sl.off : sl.off+int64(sl.n)]
			base, _, err := scanRecord(rec)
			if err != nil {
				t.Fatalf("accepted a record it cannot read again: %v", err)
			}
			if _, _, err := decodeRecord(rec, string(base)); err == nil && !bytes.HasPrefix(data, []byte(hcMagic)) {
				t.Fatal("a record accepted without the magic line")
			}
		}
		keep, whole, ok := reduceHeader(nil, data)
		if ok && !whole && !bytes.HasSuffix(keep, []byte("\r\n")) {
			t.Fatalf("kept fields without their line end: %q", keep)
		}
		// a reused buffer (readHeaderCaching's) changes nothing kept
		k2, w2, ok2 := reduceHeader(bytes.Repeat([]byte("Subject: x\r\n"), 8), data)
		if ok2 != ok || w2 != whole || ok && !bytes.Equal(k2, keep) {
			t.Fatalf("with a used buffer: %q %v %v, without %q %v %v", k2, w2, ok2, keep, whole, ok)
		}
	})
}
