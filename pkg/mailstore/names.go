package mailstore

import (
	"slices"
	"strconv"
	"strings"
)

// sortNames orders Maildir names by delivery time: the seconds and
// microseconds ("1700000000.M52P7...") numerically, then by name, so that
// UIDs follow arrival order even within one second. Each name is parsed
// once.
func sortNames(names []string) {
	type key struct {
		secs, usec int64
		name       string
	}
	keys := make([]key, len(names))
	for i, n := range names {
		s, u := nameTime(n)
		keys[i] = key{s, u, n}
	}
	slices.SortFunc(keys, func(a, b key) int {
		switch {
		case a.secs != b.secs:
			return cmpInt(a.secs, b.secs)
		case a.usec != b.usec:
			return cmpInt(a.usec, b.usec)
		}
		return strings.Compare(a.name, b.name)
	})
	for i, k := range keys {
		names[i] = k.name
	}
}

func nameTime(n string) (secs, usec int64) {
	sec, rest, _ := strings.Cut(n, ".")
	secs, _ = strconv.ParseInt(sec, 10, 64)
	if rest, ok := strings.CutPrefix(rest, "M"); ok {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end > 0 {
			usec, _ = strconv.ParseInt(rest[:end], 10, 64)
		}
	}
	return secs, usec
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}
