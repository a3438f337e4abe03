package imap

import (
	"slices"
	"strings"
	"time"
)

// THREAD=REFERENCES (RFC 5256 section 4, after Jamie Zawinski's
// algorithm): messages are linked by Message-ID and References into
// trees, empty containers pruned, and root threads with the same base
// subject merged.

// container is a node of the thread forest; msg is nil for a message
// that is only referred to.
type container struct {
	msg      *sortInfo
	parent   *container
	children []*container
}

// maxRefs bounds the References followed per message.
const maxRefs = 100

func threadReferences(infos []sortInfo) []*container {
	table := map[string]*container{}
	get := func(id string) *container {
		c := table[id]
		if c == nil {
			c = &container{}
			table[id] = c
		}
		return c
	}
	var all []*container
	for k := range infos {
		in := &infos[k]
		refs := in.refs
		if len(refs) > maxRefs {
			refs = refs[len(refs)-maxRefs:]
		}
		// 1A: chain the references, parent before child.
		for j := 1; j < len(refs); j++ {
			p, ch := get(refs[j-1]), get(refs[j])
			if ch.parent == nil && p != ch && !isAncestor(ch, p) {
				link(p, ch)
			}
		}
		// 1B: the message's own container; a duplicate or missing id
		// gets a container of its own.
		var c *container
		if in.msgID != "" && table[in.msgID] != nil && table[in.msgID].msg == nil {
			c = table[in.msgID]
		} else {
			c = &container{}
			if in.msgID != "" && table[in.msgID] == nil {
				table[in.msgID] = c
			}
		}
		c.msg = in
		all = append(all, c)
		// 1C: trust this message's References for its parent.
		if len(refs) > 0 {
			p := get(refs[len(refs)-1])
			if p != c && !isAncestor(c, p) {
				unlink(c)
				link(p, c)
			}
		}
	}
	var roots []*container
	seen := map[*container]bool{}
	for _, c := range append(all, tableValues(table)...) {
		for c.parent != nil {
			c = c.parent
		}
		if !seen[c] {
			seen[c] = true
			roots = append(roots, c)
		}
	}
	roots = prune(roots, true)
	sortThreads(roots)
	roots = mergeSubjects(roots)
	sortThreads(roots)
	return roots
}

func tableValues(t map[string]*container) []*container {
	out := make([]*container, 0, len(t))
	for _, c := range t {
		out = append(out, c)
	}
	return out
}

func link(p, c *container) {
	c.parent = p
	p.children = append(p.children, c)
}

func unlink(c *container) {
	if p := c.parent; p != nil {
		p.children = slices.DeleteFunc(p.children, func(x *container) bool { return x == c })
		c.parent = nil
	}
}

// maxThreadDepth bounds how deep threads grow: a link that would make a
// deeper one is treated like one that would make a loop, so that hostile
// References chains cost linear time, not quadratic.
const maxThreadDepth = 1000

// isAncestor reports whether a is c or an ancestor of c, or c is too deep
// to tell.
func isAncestor(a, c *container) bool {
	depth := 0
	for x := c; x != nil; x = x.parent {
		if x == a || depth > maxThreadDepth {
			return true
		}
		depth++
	}
	return false
}

// prune removes empty containers (RFC 5256 section 4, step 4): an empty
// one without children goes, one with children is replaced by them,
// except at the root where it stays when it has several.
func prune(list []*container, root bool) []*container {
	var out []*container
	for _, c := range list {
		c.children = prune(c.children, false)
		for _, ch := range c.children {
			ch.parent = c
		}
		switch {
		case c.msg == nil && len(c.children) == 0:
		case c.msg == nil && (!root || len(c.children) == 1):
			for _, ch := range c.children {
				ch.parent = c.parent
			}
			out = append(out, c.children...)
		default:
			out = append(out, c)
		}
	}
	if root {
		for _, c := range out {
			c.parent = nil
		}
	}
	return out
}

// date is the sent date of a container's message, or of its first child
// for an empty one (after sorting).
func (c *container) date() (time.Time, int) {
	if c.msg != nil {
		return c.msg.sent, c.msg.i
	}
	if len(c.children) > 0 {
		return c.children[0].date()
	}
	return time.Time{}, 0
}

func sortThreads(list []*container) {
	for _, c := range list {
		sortThreads(c.children)
	}
	slices.SortStableFunc(list, func(a, b *container) int {
		da, ia := a.date()
		db, ib := b.date()
		if r := da.Compare(db); r != 0 {
			return r
		}
		return ia - ib
	})
}

// subjectOf returns the base subject of a root and whether it is a reply.
func (c *container) subjectOf() (string, bool) {
	if c.msg == nil && len(c.children) > 0 {
		c = c.children[0]
	}
	if c.msg == nil {
		return "", false
	}
	return c.msg.subj, c.msg.reply
}

// mergeSubjects gathers root threads with one base subject (RFC 5256
// section 4, step 5).
func mergeSubjects(roots []*container) []*container {
	bySubj := map[string]*container{}
	for _, c := range roots {
		subj, reply := c.subjectOf()
		if subj == "" {
			continue
		}
		old := bySubj[subj]
		_, oldReply := old.subjectOfSafe()
		if old == nil || c.msg == nil && old.msg != nil || oldReply && !reply {
			bySubj[subj] = c
		}
	}
	var out []*container
	for _, c := range roots {
		subj, reply := c.subjectOf()
		t := bySubj[subj]
		if subj == "" || t == nil || t == c {
			out = append(out, c)
			continue
		}
		_, tReply := t.subjectOf()
		switch {
		case t.msg == nil && c.msg == nil:
			for _, ch := range c.children {
				link(t, ch)
			}
		case t.msg == nil:
			link(t, c)
		case reply && !tReply:
			link(t, c)
		default:
			// Neither is the parent: both go under a new empty container,
			// which takes t's place.
			tc := &container{msg: t.msg, children: t.children}
			for _, ch := range tc.children {
				ch.parent = tc
			}
			t.msg, t.children = nil, nil
			link(t, tc)
			link(t, c)
		}
	}
	return out
}

func (c *container) subjectOfSafe() (string, bool) {
	if c == nil {
		return "", false
	}
	return c.subjectOf()
}

// writeThread writes one container: its number, then its children, one
// directly when it is alone, each in parentheses otherwise.
func (s *session) writeThread(c *container, uid bool) {
	if c.msg != nil {
		s.w.Raw(s.number(c.msg.i, uid))
		if len(c.children) > 0 {
			s.w.SP()
		}
	}
	if len(c.children) == 1 && c.msg != nil {
		s.writeThread(c.children[0], uid)
		return
	}
	for _, ch := range c.children {
		s.w.Raw("(")
		s.writeThread(ch, uid)
		s.w.Raw(")")
	}
}

// msgIDs returns the message ids ("<...>") in a header value, at most
// maxRefs of the last ones.
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		ids = append(ids, v[i:i+j+1]) // compared as octets
		v = v[i+j+1:]
	}
	if len(ids) > maxRefs {
		ids = ids[len(ids)-maxRefs:]
	}
	return ids
}

func firstID(v string) string {
	ids := msgIDs(v)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}
