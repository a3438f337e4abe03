package imap

import (
	"slices"
	"sort"

	"mailsrv/pkg/imap/wire"
)

// span is the messages sel.msgs[lo:hi].
type span struct{ lo, hi int }

// spans returns the messages that resolve returns, as ascending disjoint
// spans of indexes, found by binary search in msgs (UIDs) or by
// arithmetic (sequence numbers) instead of testing every message: FETCH
// 99901:100000 in a 100,000-message folder tested 100,000 of them.
func (sel *selected) spans(set wire.SeqSet, uid bool) []span {
	if set.Saved {
		var out []span
		for _, i := range sel.resolve(set, uid) {
			if n := len(out); n > 0 && out[n-1].hi == i {
				out[n-1].hi++
			} else {
				out = append(out, span{i, i + 1})
			}
		}
		return out
	}
	n := len(sel.msgs)
	star := uint32(n)
	if uid {
		star = sel.maxUID()
	}
	var out []span
	for _, r := range set.Ranges {
		lo, hi := r.Lo, r.Hi
		if lo == wire.Star {
			lo = star
		}
		if hi == wire.Star {
			hi = star
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		var sp span
		if uid {
			sp.lo = sort.Search(n, func(i int) bool { return sel.msgs[i].UID >= lo })
			sp.hi = sort.Search(n, func(i int) bool { return sel.msgs[i].UID > hi })
		} else {
			sp.lo = int(min(max(lo, 1), uint32(n)+1)) - 1 // sequence number 0 is none
			sp.hi = int(min(hi, uint32(n)))
		}
		if sp.lo < sp.hi {
			out = append(out, sp)
		}
	}
	if len(out) < 2 {
		return out
	}
	slices.SortFunc(out, func(a, b span) int { return a.lo - b.lo })
	merged := out[:1]
	for _, sp := range out[1:] {
		last := &merged[len(merged)-1]
		if sp.lo <= last.hi {
			last.hi = max(last.hi, sp.hi)
		} else {
			merged = append(merged, sp)
		}
	}
	return merged
}
