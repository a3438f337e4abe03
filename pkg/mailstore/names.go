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
	sortBy(names, func(n string) string { return n })
}

// sortBy is sortNames for things that have a name.
func sortBy[T any](xs []T, name func(T) string) {
	type key struct {
		secs, usec int64
		name       string
		x          T
	}
	keys := make([]key, len(xs))
	for i, x := range xs {
		n := name(x)
		s, u := nameTime(n)
		keys[i] = key{s, u, n, x}
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
		xs[i] = k.x
	}
}

func nameTime(n string) (secs, usec int64) {
	if secs, usec, ok := fastNameTime(n); ok {
		return secs, usec
	}
	sec, rest, _ := strings.Cut(n, ".")
	secs, ok := digits(sec)
	if !ok {
		secs, _ = strconv.ParseInt(sec, 10, 64)
	}
	if rest, ok := strings.CutPrefix(rest, "M"); ok {
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		if end > 0 {
			if usec, ok = digits(rest[:end]); !ok {
				usec, _ = strconv.ParseInt(rest[:end], 10, 64)
			}
		}
	}
	return secs, usec
}

// fastNameTime is nameTime for the usual "SECS.MUSEC..." with short
// digit runs, in one pass; ok is false for anything else.
func fastNameTime(n string) (secs, usec int64, ok bool) {
	i := 0
	for ; i < len(n) && n[i] >= '0' && n[i] <= '9'; i++ {
		secs = secs*10 + int64(n[i]-'0')
	}
	if i == 0 || i > 18 || i+1 >= len(n) || n[i] != '.' || n[i+1] != 'M' {
		return 0, 0, false
	}
	j := i + 2
	for ; j < len(n) && n[j] >= '0' && n[j] <= '9'; j++ {
		usec = usec*10 + int64(n[j]-'0')
	}
	if j == i+2 || j-i-2 > 18 {
		return 0, 0, false
	}
	return secs, usec, true
}

// digits parses a short run of decimal digits (the common case of
// nameTime, without strconv's generality); ok is false for anything else.
func digits(s string) (n int64, ok bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}
