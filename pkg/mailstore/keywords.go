package mailstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"mailsrv/pkg/safefile"
)

// Keywords (IMAP flags without "\", such as $Forwarded or $Junk) are the
// lower-case letters of the Maildir info part: letter 'a'+N stands for the
// keyword on line "N name" of the folder's KeywordsName file, the format
// and name Dovecot uses, so that a mailbox moved between the two keeps its
// keywords. A folder has at most 26 keywords.
const (
	KeywordsName = "dovecot-keywords"
	maxKeywords  = 26
)

// ErrTooManyKeywords is returned when a folder has no letter left.
var ErrTooManyKeywords = errors.New("too many keywords in this folder")

// readKeywords returns the folder's keyword table, index = letter - 'a'.
func (f *Folder) readKeywords() ([maxKeywords]string, error) {
	var kw [maxKeywords]string
	data, err := os.ReadFile(filepath.Join(f.Dir, KeywordsName))
	if errors.Is(err, os.ErrNotExist) {
		return kw, nil
	}
	if err != nil {
		return kw, fmt.Errorf("keywords: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		num, name, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(num)
		if ok && err == nil && n >= 0 && n < maxKeywords && name != "" {
			kw[n] = name
		}
	}
	return kw, nil
}

// Keywords returns the folder's keywords, for FLAGS and PERMANENTFLAGS.
func (f *Folder) Keywords() ([]string, error) {
	kw, err := f.readKeywords()
	var out []string
	for _, k := range kw {
		if k != "" {
			out = append(out, k)
		}
	}
	return out, err
}

// FlagNames returns the IMAP names of the flags set: system flags, then
// keywords.
func (f *Folder) FlagNames(fl Flags) []string {
	out := fl.IMAP()
	var kw [maxKeywords]string
	loaded := false
	for i := 0; i < len(fl); i++ {
		l := fl[i]
		if l < 'a' || l > 'z' {
			continue
		}
		if !loaded {
			kw, _ = f.readKeywords()
			loaded = true
		}
		if name := kw[l-'a']; name != "" {
			out = append(out, name)
		}
	}
	return out
}

// Letters maps IMAP flag names to Maildir letters. System flags map to
// their letters; keywords to the folder's letters, given a new one (under
// the folder lock) when create is set, left out otherwise. Unknown system
// flags (\Recent, \Foo) are an error.
func (f *Folder) Letters(names []string, create bool) (Flags, error) {
	var b []byte
	var kws []string
	for _, n := range names {
		if l, ok := Letter(n); ok {
			b = append(b, l)
		} else if strings.HasPrefix(n, `\`) {
			return "", fmt.Errorf("%w: %s", ErrBadFlag, n)
		} else {
			kws = append(kws, n)
		}
	}
	if len(kws) > 0 {
		letters, err := f.keywordLetters(kws, create)
		if err != nil {
			return "", err
		}
		b = append(b, letters...)
	}
	return Flags(b).With("", ""), nil
}

// ErrBadFlag is a system flag that cannot be stored.
var ErrBadFlag = errors.New("flag cannot be set")

func (f *Folder) keywordLetters(kws []string, create bool) ([]byte, error) {
	kw, err := f.readKeywords()
	if err != nil {
		return nil, err
	}
	out, missing := lookupKeywords(kw, kws)
	if len(missing) == 0 || !create {
		return out, nil
	}
	unlock, err := lock(filepath.Join(f.Dir, uidListLock))
	if err != nil {
		return nil, err
	}
	defer func() { _ = unlock() }()
	if kw, err = f.readKeywords(); err != nil {
		return nil, err
	}
	_, missing = lookupKeywords(kw, kws)
	for _, m := range missing {
		free := -1
		for i, k := range kw {
			if k == "" {
				free = i
				break
			}
		}
		if free < 0 {
			return nil, ErrTooManyKeywords
		}
		kw[free] = m
	}
	var buf bytes.Buffer
	for i, k := range kw {
		if k != "" {
			fmt.Fprintf(&buf, "%d %s\n", i, k)
		}
	}
	if err := safefile.WriteFile(filepath.Join(f.Dir, KeywordsName), buf.Bytes(), 0600); err != nil {
		return nil, err
	}
	out, _ = lookupKeywords(kw, kws)
	return out, nil
}

// lookupKeywords returns the letters of the known keywords (compared
// without case, RFC 3501 section 2.3.2) and the names not known.
func lookupKeywords(kw [maxKeywords]string, names []string) ([]byte, []string) {
	var out []byte
	var missing []string
	for _, n := range names {
		found := false
		for i, k := range kw {
			if k != "" && strings.EqualFold(k, n) {
				out = append(out, byte('a'+i))
				found = true
				break
			}
		}
		if !found && !containsFold(missing, n) {
			missing = append(missing, n)
		}
	}
	return out, missing
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
