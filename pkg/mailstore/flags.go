package mailstore

import (
	"sort"
	"strings"

	gomaildir "github.com/emersion/go-maildir"
)

// Flags are the letters of a Maildir file name's info part (after ":2,"),
// in ASCII order as the Maildir specification requires. Letters imapd does
// not map (P, lower-case keyword letters) are kept as they are.
type Flags string

// RFC 3501 section 2.3.2 system flags and their Maildir letters.
var systemFlags = []struct {
	Name   string
	Letter byte
}{
	{`\Draft`, byte(gomaildir.FlagDraft)}, {`\Flagged`, byte(gomaildir.FlagFlagged)},
	{`\Answered`, byte(gomaildir.FlagReplied)}, {`\Seen`, byte(gomaildir.FlagSeen)},
	{`\Deleted`, byte(gomaildir.FlagTrashed)},
}

// SystemFlags lists the flags a client may store, for FLAGS and
// PERMANENTFLAGS.
var SystemFlags = []string{`\Answered`, `\Flagged`, `\Deleted`, `\Seen`, `\Draft`}

// Letter returns the Maildir letter of an IMAP system flag.
func Letter(flag string) (byte, bool) {
	for _, f := range systemFlags {
		if strings.EqualFold(f.Name, flag) {
			return f.Letter, true
		}
	}
	return 0, false
}

// Has reports whether the flag with letter l is set.
func (f Flags) Has(l byte) bool { return strings.IndexByte(string(f), l) >= 0 }

// IMAP returns the IMAP names of the system flags set.
func (f Flags) IMAP() []string {
	var out []string
	for _, s := range systemFlags {
		if f.Has(s.Letter) {
			out = append(out, s.Name)
		}
	}
	return out
}

// With returns f with the letters in add set and those in del cleared.
func (f Flags) With(add, del string) Flags {
	set := map[byte]bool{}
	for i := 0; i < len(f); i++ {
		set[f[i]] = true
	}
	for i := 0; i < len(add); i++ {
		set[add[i]] = true
	}
	for i := 0; i < len(del); i++ {
		delete(set, del[i])
	}
	b := make([]byte, 0, len(set))
	for l := range set {
		b = append(b, l)
	}
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	return Flags(b)
}

// splitName splits a Maildir file name into its base (the unique part
// and its ",S=" fields, which never change) and its flags.
func splitName(name string) (base string, flags Flags) {
	i := strings.IndexByte(name, ':')
	if i < 0 {
		return name, ""
	}
	info := name[i+1:]
	if strings.HasPrefix(info, "2,") {
		flags = Flags(info[2:])
	}
	return name[:i], flags
}
