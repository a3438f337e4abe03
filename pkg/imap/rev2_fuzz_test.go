package imap

import "testing"

// FuzzCreateParams reads CREATE's parameters (RFC 4466, USE of RFC 6154)
// and the start of APPEND's UTF8 form (RFC 6855): no panic, bounded
// attribute lists, no empty attribute, and the UTF8 form taken only once
// UTF8=ACCEPT is enabled.
func FuzzCreateParams(f *testing.F) {
	for _, s := range []string{
		" (USE (\\Sent))\r\n", " (USE (\\Archive \\Junk \\archive))\r\n", " (USE ())\r\n",
		" (USE (\\All))\r\n", " (COLOR (red))\r\n", " (USE (Sent))\r\n", " (USE {5+}\r\n\\Sent)\r\n",
		" (USE (\\Drafts\r\n", "UTF8 (~{3+}\r\nabc)\r\n", "UTF8 ({1}\r\nx\r\n", "utf8 (\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := fuzzParser(data)
		if p == nil {
			return
		}
		if p.Peek() == ' ' {
			uses, err := createParams(p)
			if len(uses) > 16 {
				t.Fatalf("%d attributes", len(uses))
			}
			if err == nil {
				for _, u := range uses {
					if u == "" {
						t.Fatal("empty attribute")
					}
				}
			}
			return
		}
		s := &session{utf8Accept: len(data)%2 == 0}
		ok, err := appendUTF8(s, p)
		if ok && (err != nil || !s.utf8Accept) {
			t.Fatalf("UTF8 form taken: %v, enabled %v", err, s.utf8Accept)
		}
	})
}
