package wire

import (
	"bytes"
	"errors"
	"testing"
)

// parseGeneric parses a command as tag, name and any sequence of values, the
// way every command handler uses the Parser; with utf8 as after ENABLE
// IMAP4rev2 or UTF8=ACCEPT, reading atoms as mailbox names.
func parseGeneric(c *Command, utf8 bool) error {
	p := NewParser(c, 8)
	p.UTF8 = utf8
	if _, err := p.Tag(); err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	if _, err := p.Atom(); err != nil {
		return err
	}
	var value func() error
	value = func() error {
		switch p.Peek() {
		case '(':
			return p.List(value)
		case '"', '{':
			_, err := p.String()
			return err
		case '\\':
			_, err := p.Flag()
			return err
		case '*', '$':
			_, err := p.SeqSet()
			return err
		}
		if c := p.Peek(); c >= '1' && c <= '9' {
			_, err := p.SeqSet()
			return err
		}
		if utf8 {
			_, err := p.Mailbox()
			return err
		}
		_, err := p.AString()
		return err
	}
	for !p.AtEnd() {
		if err := p.SP(); err != nil {
			return err
		}
		if err := value(); err != nil {
			return err
		}
	}
	return nil
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"a NOOP\r\n",
		"a LOGIN {3}\r\nbob {2+}\r\npw\r\n",
		"a FETCH 1:*,3 (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.10>)\r\n",
		"a SEARCH OR (SEEN FROM \"x\") NOT 2:4\r\n",
		"a APPEND INBOX (\\Seen) {5+}\r\nhello\r\n",
		"a APPEND INBOX {99999999999+}\r\n",
		"a STORE $ +FLAGS.SILENT (\\Deleted)\r\nb UID COPY 1:* Trash\r\n",
		"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:3 5:7)))\r\n",
		"a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\nb STORE 1 (UNCHANGEDSINCE 0) +FLAGS ()\r\n",
		"((((((((((\r\n",
		"a \"unterminated\r\n",
		"a ENABLE IMAP4rev2 UTF8=ACCEPT\r\n",
		"a CREATE \"\xc3\xa9t\xc3\xa9\" (USE (\\Sent \\Drafts))\r\n",
		"a APPEND \"Envoy\xc3\xa9s\" (\\Seen) UTF8 (~{5+}\r\nhello)\r\n",
		"a LIST \"\" \"&AOk-*\" RETURN (STATUS (DELETED SIZE))\r\n",
		"a SELECT \"\xff\xfe\"\r\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxLine: 1000, MaxLiteral: 100, MaxDiscard: 300, MaxDepth: 8, MaxParts: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), lim)
		conts := 0
		r.Continue = func() error { conts++; return nil }
		for range 50 {
			c, err := r.ReadCommand()
			var ce *CommandError
			if errors.As(err, &ce) {
				continue
			}
			if err != nil {
				return
			}
			text := 0
			for _, l := range c.Lines {
				text += len(l)
			}
			if text > lim.MaxLine || len(c.Literals) > lim.MaxParts || len(c.Literals) != len(c.Lines)-1 {
				t.Fatalf("limits broken: %s", c)
			}
			for _, l := range c.Literals {
				if int64(len(l)) > lim.MaxLiteral {
					t.Fatalf("literal of %d bytes", len(l))
				}
			}
			_ = parseGeneric(c, false)
			_ = parseGeneric(c, true)
		}
	})
}
