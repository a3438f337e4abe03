package imap

import (
	"mailsrv/pkg/imap/wire"
	"slices"
	"strings"

	"mailsrv/pkg/mailstore"
)

// LIST and LSUB (RFC 3501 sections 6.3.8 and 6.3.9), with the
// SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348) attributes.
func init() {
	commands["LIST"] = handler{cmdList, authed}
	commands["LSUB"] = handler{cmdList, authed}
}

// maxPattern bounds a LIST reference plus pattern.
const maxPattern = 1024

// listOpts are the RFC 5258 LIST-EXTENDED selection and return options.
type listOpts struct {
	subscribed bool     // select subscribed mailboxes (or LSUB)
	recursive  bool     // RECURSIVEMATCH: CHILDINFO for parents of matches
	special    bool     // SPECIAL-USE selection (RFC 6154 section 3)
	retSubs    bool     // return \Subscribed
	status     []string // RETURN (STATUS (...)), RFC 5819
}

func cmdList(s *session, c *command) error {
	var o listOpts
	var ref string
	var pats []string
	err := c.p.SP()
	if err == nil && c.p.Peek() == '(' && c.name == "LIST" {
		if err = parseListSelect(c.p, &o); err == nil {
			err = c.p.SP()
		}
	}
	if err == nil {
		ref, err = c.p.AString()
	}
	if err == nil {
		err = c.p.SP()
	}
	if err == nil {
		pats, err = listPatterns(c.p, c.name == "LIST")
	}
	if err == nil && c.name == "LIST" && strings.HasPrefix(strings.ToUpper(c.p.Rest()), " RETURN ") {
		err = parseListReturn(c.p, &o)
	}
	if err == nil {
		err = c.p.End()
	}
	if err != nil {
		return err
	}
	if o.recursive && !o.subscribed {
		return bad("RECURSIVEMATCH needs another selection option")
	}
	if c.name == "LSUB" {
		o.subscribed = true
	}
	if len(pats) == 1 && pats[0] == "" {
		// RFC 3501 section 6.3.8: the delimiter and root of ref.
		s.w.Raw(`* ` + c.name + ` (\Noselect) "/" ""` + "\r\n")
		return nil
	}
	for i := range pats {
		if len(ref)+len(pats[i]) > maxPattern {
			return bad("pattern too long")
		}
		pats[i] = ref + pats[i]
		if !s.utf8Names() { // 8-bit from a rev1 client: UTF-8 (see wire.ToMUTF7)
			pats[i] = wire.ToMUTF7(pats[i], false)
		}
	}
	return s.listMailboxes(c.name, pats, o)
}

// listPatterns reads one pattern, or a parenthesised list of them
// (RFC 5258 section 3) when extended is set.
func listPatterns(p *wire.Parser, extended bool) ([]string, error) {
	if p.Peek() != '(' || !extended {
		pat, err := p.ListMailbox()
		return []string{pat}, err
	}
	var pats []string
	err := p.List(func() error {
		pat, err := p.ListMailbox()
		if len(pats) >= 32 {
			return bad("too many patterns")
		}
		pats = append(pats, pat)
		return err
	})
	if err == nil && len(pats) == 0 {
		err = bad("empty pattern list")
	}
	return pats, err
}

func parseListSelect(p *wire.Parser, o *listOpts) error {
	return p.List(func() error {
		a, err := p.Atom()
		switch strings.ToUpper(a) {
		case "SUBSCRIBED":
			o.subscribed, o.retSubs = true, true
		case "RECURSIVEMATCH":
			o.recursive = true
		case "SPECIAL-USE":
			o.special = true
		case "REMOTE":
		default:
			return bad("unknown LIST selection option " + a)
		}
		return err
	})
}

func parseListReturn(p *wire.Parser, o *listOpts) error {
	if err := p.SP(); err != nil {
		return err
	}
	if _, err := p.Atom(); err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	return p.List(func() error {
		a, err := p.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(a) {
		case "SUBSCRIBED":
			o.retSubs = true
		case "CHILDREN", "SPECIAL-USE": // always returned
		case "STATUS":
			if err := p.SP(); err != nil {
				return err
			}
			o.status, err = statusItems(p)
			return err
		default:
			return bad("unknown LIST return option " + a)
		}
		return nil
	})
}

// listMailboxes writes the LIST (or LSUB) responses for the mailboxes
// matching any of pats.
func (s *session) listMailboxes(cmd string, pats []string, o listOpts) error {
	names, err := s.store.List()
	if err != nil {
		return err
	}
	subs, err := s.store.Subscriptions()
	if err != nil {
		return err
	}
	stored := s.displayNames(names, subs) // UTF-8 names for IMAP4rev2 (rev2.go)
	exists, subscribed := setOf(names), setOf(subs)
	base := names
	if o.subscribed {
		base = slices.Clone(subs)
		slices.SortStableFunc(base, func(a, b string) int { // INBOX first, as in List
			return cmpBool(!mailstore.IsInbox(a), !mailstore.IsInbox(b))
		})
	}
	for _, n := range withParents(base) {
		if !matchAny(pats, n) {
			continue
		}
		childInfo := o.recursive && childMatches(subs, n, "*")
		inBase := slices.Contains(base, n)
		if o.subscribed && !inBase && !childInfo && (cmd == "LIST" || childMatchesAny(base, n, pats)) {
			continue // RFC 3501 section 6.3.9, RFC 5258 section 3.5
		}
		sn := n
		if st, ok := stored[n]; ok {
			sn = st
		}
		uses := s.store.SpecialUses(sn)
		if o.special && len(uses) == 0 {
			continue
		}
		var attrs []string
		switch {
		case !exists[n] && o.subscribed && inBase && cmd == "LIST":
			attrs = append(attrs, `\NonExistent`)
		case !exists[n]:
			attrs = append(attrs, `\Noselect`)
		}
		if o.retSubs && subscribed[n] && cmd == "LIST" {
			attrs = append(attrs, `\Subscribed`)
		}
		if cmd == "LIST" {
			if hasChild(names, n) {
				attrs = append(attrs, `\HasChildren`)
			} else {
				attrs = append(attrs, `\HasNoChildren`)
			}
			attrs = append(attrs, uses...)
		}
		s.w.Raw("* " + cmd + " (" + strings.Join(attrs, " ") + `) "/" `).AString(n)
		if childInfo {
			s.w.Raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		s.w.CRLF()
		if len(o.status) > 0 && exists[n] {
			if err := s.writeStatus(sn, o.status); err != nil {
				return err
			}
		}
	}
	return nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func matchAny(pats []string, n string) bool {
	for _, p := range pats {
		if listMatch(p, n) {
			return true
		}
	}
	return false
}

func childMatchesAny(names []string, n string, pats []string) bool {
	for _, p := range pats {
		if childMatches(names, n, p) {
			return true
		}
	}
	return false
}

// withParents adds the parents of nested names that have no folder of
// their own ("a" for "a/b"), which LIST shows as \Noselect.
func withParents(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		parts := strings.Split(n, mailstore.Delim)
		for i := 1; i <= len(parts); i++ {
			p := strings.Join(parts[:i], mailstore.Delim)
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func childMatches(names []string, n, pat string) bool {
	for _, x := range names {
		if strings.HasPrefix(x, n+mailstore.Delim) && listMatch(pat, x) {
			return true
		}
	}
	return false
}

func hasChild(names []string, n string) bool {
	for _, x := range names {
		if strings.HasPrefix(x, n+mailstore.Delim) {
			return true
		}
	}
	return false
}

// listMatch matches a LIST pattern: "*" matches anything, "%" anything but
// the delimiter; INBOX matches case-insensitively. Dynamic programming
// keeps it linear in pattern times name, whatever the client sends.
func listMatch(pat, name string) bool {
	if mailstore.IsInbox(name) {
		if len(pat) >= 5 && strings.EqualFold(pat[:5], "INBOX") {
			pat = "INBOX" + pat[5:]
		}
	}
	// m[j]: pat[:i] matches name[:j].
	m := make([]bool, len(name)+1)
	m[0] = true
	for i := 0; i < len(pat); i++ {
		next := make([]bool, len(name)+1)
		switch pat[i] {
		case '*', '%':
			for j := 0; j <= len(name); j++ {
				next[j] = m[j] || j > 0 && next[j-1] && (pat[i] == '*' || name[j-1] != '/')
			}
		default:
			for j := 1; j <= len(name); j++ {
				next[j] = m[j-1] && name[j-1] == pat[i]
			}
		}
		m = next
	}
	return m[len(name)]
}
