package imap

import (
	"io"
	"slices"
	"testing"

	"mailsrv/pkg/imap/wire"
	"mailsrv/pkg/mailstore"
)

// TestViewSharesSnapshot: a session's view is the snapshot's own array
// until the session changes it; no change the session makes (flags, a
// message gone and dropped, an expunge, new messages) reaches the
// snapshot, which the folder and other sessions of the process share.
func TestViewSharesSnapshot(t *testing.T) {
	snap := mailstore.Snapshot{Validity: 1, Next: 4, Msgs: []mailstore.Message{
		{UID: 1, Base: "a", Flags: "S"}, {UID: 2, Base: "b"}, {UID: 3, Base: "c", Flags: "F"}}}
	orig := slices.Clone(snap.Msgs)
	check := func(what string) {
		t.Helper()
		if !slices.Equal(snap.Msgs, orig) {
			t.Fatalf("%s changed the snapshot: %v", what, snap.Msgs)
		}
	}
	sel := &selected{}
	sel.view(snap)
	if !sel.shared || &sel.msgs[0] != &snap.Msgs[0] {
		t.Fatal("the view is a copy")
	}
	sel.setFlagsAt(0, "S") // unchanged flags: no copy
	if !sel.shared {
		t.Fatal("setting the same flags copied the view")
	}
	sel.setFlagsAt(1, "FS")
	check("setFlagsAt")
	if sel.shared || sel.msgs[1].Flags != "FS" {
		t.Fatalf("view after setFlagsAt: %v", sel.msgs)
	}

	sel.view(snap)
	sel.markGone(1)
	if !sel.isGone(1) || sel.isGone(0) {
		t.Fatal("isGone")
	}
	if idx, uids := sel.dropGone(); !slices.Equal(idx, []int{1}) || !slices.Equal(uids, []uint32{2}) {
		t.Fatalf("dropGone: %v %v", idx, uids)
	}
	check("dropGone")
	if len(sel.msgs) != 2 || sel.msgs[0].UID != 1 || sel.msgs[1].UID != 3 || len(sel.gone) != 0 {
		t.Fatalf("view after dropGone: %v", sel.msgs)
	}

	sel.view(snap)
	sel.remove([]int{0, 2})
	check("remove")
	if len(sel.msgs) != 1 || sel.msgs[0].UID != 2 {
		t.Fatalf("view after remove: %v", sel.msgs)
	}

	// New messages: an unchanged view shares the new snapshot; a changed
	// one appends to its own copy.
	bigger := mailstore.Snapshot{Validity: 1, Next: 5, Msgs: append(slices.Clone(orig), mailstore.Message{UID: 4, Base: "d"})}
	s := &session{sel: &selected{recent: map[uint32]bool{}}, w: wire.NewWriter(io.Discard)}
	s.sel.view(snap)
	s.addNew(bigger, true)
	if !s.sel.shared || &s.sel.msgs[0] != &bigger.Msgs[0] || len(s.sel.msgs) != 4 {
		t.Fatal("an unchanged view does not share the new snapshot")
	}
	s.sel.view(snap)
	s.sel.setFlagsAt(0, "")
	s.addNew(bigger, false)
	check("addNew")
	if s.sel.shared || len(s.sel.msgs) != 4 || s.sel.msgs[0].Flags != "" || s.sel.msgs[3].UID != 4 {
		t.Fatalf("view after addNew: %v", s.sel.msgs)
	}
}
