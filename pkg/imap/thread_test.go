package imap

import (
	"bytes"
	"testing"
	"time"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

func TestThreadReferences(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2023, 1, d, 0, 0, 0, 0, time.UTC) }
	msg := func(i int, id, subj string, d int, refs ...string) sortInfo {
		return sortInfo{i: i - 1, msgID: id, subj: baseSubject(subj), sent: day(d),
			reply: baseSubject(subj) != subj && subj != "", refs: refs}
	}
	tests := []struct {
		name  string
		infos []sortInfo
		want  string
	}{
		{"chain and siblings", []sortInfo{
			msg(1, "<a>", "hello", 1),
			msg(2, "<b>", "Re: hello", 2, "<a>"),
			msg(3, "<c>", "Re: hello", 3, "<a>", "<b>"),
			msg(4, "<d>", "Re: hello", 4, "<a>"),
			msg(5, "<e>", "other", 5),
		}, "(1 (2 3)(4))(5)"},
		{"missing parent becomes an empty root", []sortInfo{
			msg(1, "<x1>", "Re: lost", 2, "<gone>"),
			msg(2, "<x2>", "Re: lost", 3, "<gone>"),
		}, "((1)(2))"},
		{"same subject without references merges", []sortInfo{
			msg(1, "<s1>", "topic", 1),
			msg(2, "<s2>", "Re: topic", 2),
		}, "(1 2)"},
		{"loop in references is not followed", []sortInfo{
			msg(1, "<l1>", "a", 1, "<l2>"),
			msg(2, "<l2>", "b", 2, "<l1>"),
		}, "(2 1)"}, // the first message's References win
		{"duplicate message-id", []sortInfo{
			msg(1, "<dup>", "x", 1),
			msg(2, "<dup>", "y", 2),
		}, "(1)(2)"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		s := &session{w: wire.NewWriter(&buf), sel: &selected{}}
		for i := range tt.infos {
			s.sel.msgs = append(s.sel.msgs, mailstore.Message{UID: uint32(i + 1)})
		}
		for _, r := range threadReferences(tt.infos) {
			s.w.Raw("(")
			s.writeThread(r, false)
			s.w.Raw(")")
		}
		if err := s.w.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, buf.String(), tt.want)
		}
	}
}

// A References chain longer than maxThreadDepth is cut, not followed into
// quadratic time or deep recursion.
func TestThreadDepthBounded(t *testing.T) {
	var infos []sortInfo
	for i := range 5000 {
		in := sortInfo{i: i, msgID: "<" + itoa(i) + ">", subj: "s" + itoa(i)}
		if i > 0 {
			in.refs = []string{"<" + itoa(i-1) + ">"}
		}
		infos = append(infos, in)
	}
	roots := threadReferences(infos)
	depth := 0
	for c := roots[0]; len(c.children) > 0; c = c.children[0] {
		depth++
	}
	if depth > maxThreadDepth+2 || len(roots) < 2 {
		t.Errorf("depth %d, %d roots", depth, len(roots))
	}
}
