package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mailsrv/pkg/safefile"
)

// Maildir++ quota (Courier's README.maildirquota, which Dovecot, maildrop
// and Exim follow): the file maildirsize at the top of the mailbox holds
// the limit on its first line ("1048576S": bytes) and then one line
// "BYTES COUNT" per change, which writers append with one write(2) each, so
// that the usage is the sum of the lines without a scan. Deliveries check
// it and append to it; imapd's APPEND, COPY, MOVE and EXPUNGE (Folder's
// account) and pop3d's deletions append theirs. It is a cache: it is
// rebuilt from a scan of every folder when it is missing, unreadable or
// malformed, when its limit is not the user's, when it has grown to
// maildirsizeMax bytes, and when it says a message does not fit but may be
// stale (older than maildirsizeStale, or older than the cur/ or new/ of any
// folder, which another program working on the Maildir, a mail reader
// deleting files, changes too). Sizes are those IMAP counts (CRLF line
// endings, the ,W= of the file name), so that the file and the IMAP QUOTA
// response agree; unlike Courier, Trash counts too, as it does for IMAP.
const (
	MaildirsizeName  = "maildirsize"
	maildirsizeMax   = 5120
	maildirsizeStale = 15 * time.Minute
)

// EnvQuotaTempFail, set to a true value ("1", "true"), makes a full
// mailbox a temporary failure for deliver and smtpd.
const EnvQuotaTempFail = "MAILSRV_QUOTA_TEMPFAIL"

// QuotaTempFailFromEnv reads EnvQuotaTempFail.
func QuotaTempFailFromEnv() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvQuotaTempFail))
	return v
}

// QuotaUse is a mailbox's usage against its limit.
type QuotaUse struct {
	Limit int64 // bytes
	Size  int64 // bytes used
	Count int64 // messages
}

// Over reports whether adding size bytes would exceed the limit.
func (q QuotaUse) Over(size int64) bool { return q.Size+size > q.Limit }

// Quota returns the usage of the mailbox against limit (bytes), from
// maildirsize, rebuilding it when the Maildir++ rules say so; add is the
// size about to be added: if it does not fit, a file that may be stale is
// rebuilt before the answer.
func (s *Store) Quota(limit, add int64) (QuotaUse, error) {
	use, mtime, err := s.readMaildirsize()
	switch {
	case err != nil, use.Limit != limit:
	case use.Over(add) && s.maybeStale(mtime):
	default:
		return use, nil
	}
	return s.RecalcQuota(limit)
}

// QuotaFull reports, without writing anything, whether maildirsize shows
// the mailbox at or over limit and is recent enough to be believed: what
// smtpd, which may not write (and often not read) mailboxes, checks at
// RCPT. An unreadable or doubtful file is "not full": deliver decides.
func (s *Store) QuotaFull(limit int64) bool {
	use, mtime, err := s.readMaildirsize()
	return err == nil && use.Size >= limit && !s.maybeStale(mtime)
}

// maybeStale reports whether a maildirsize written at mtime may miss
// messages removed since.
func (s *Store) maybeStale(mtime time.Time) bool {
	if time.Since(mtime) > maildirsizeStale {
		return true
	}
	dirs := []string{s.Root}
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		return true
	}
	for _, e := range ents { // Maildir++ folders: .Trash, .Archive.2026, ...
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." {
			dirs = append(dirs, filepath.Join(s.Root, e.Name()))
		}
	}
	for _, d := range dirs {
		for _, sub := range []string{"cur", "new"} {
			fi, err := os.Stat(filepath.Join(d, sub))
			if err != nil && d != s.Root && os.IsNotExist(err) {
				continue // not a Maildir
			}
			if err != nil || !fi.ModTime().Before(mtime) {
				return true
			}
		}
	}
	return false
}

// errRebuild marks a maildirsize to be rebuilt.
var errRebuild = errors.New("maildirsize: rebuild")

// readMaildirsize sums maildirsize; errRebuild (or another error) asks
// for a rebuild.
func (s *Store) readMaildirsize() (QuotaUse, time.Time, error) {
	path := filepath.Join(s.Root, MaildirsizeName)
	fi, err := os.Stat(path)
	if err != nil {
		return QuotaUse{}, time.Time{}, err
	}
	if fi.Size() >= maildirsizeMax {
		return QuotaUse{}, time.Time{}, errRebuild
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return QuotaUse{}, time.Time{}, err
	}
	if len(data) >= maildirsizeMax { // grew meanwhile
		return QuotaUse{}, time.Time{}, errRebuild
	}
	use, err := parseMaildirsize(data)
	return use, fi.ModTime(), err
}

// parseMaildirsize reads the limit line and sums the others. A line being
// appended (no newline yet) is left out; a count limit ("C") is ignored.
func parseMaildirsize(data []byte) (QuotaUse, error) {
	var use QuotaUse
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return use, errRebuild
	}
	lines := strings.Split(string(data[:end]), "\n")
	use.Limit = -1
	for _, def := range strings.Split(lines[0], ",") {
		if n, ok := strings.CutSuffix(def, "S"); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 0 {
				return use, errRebuild
			}
			use.Limit = v
		}
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 2 {
			return use, errRebuild
		}
		n, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return use, errRebuild
		}
		use.Size += n
		use.Count += c
	}
	return use, nil
}

// RecalcQuota scans every folder and writes a new maildirsize (through a
// temporary file and a rename, as the Maildir++ rules ask).
func (s *Store) RecalcQuota(limit int64) (QuotaUse, error) {
	size, count, err := s.Usage()
	if err != nil {
		return QuotaUse{}, err
	}
	use := QuotaUse{Limit: limit, Size: size, Count: int64(count)}
	return use, s.writeMaildirsize(use)
}

func (s *Store) writeMaildirsize(use QuotaUse) error {
	text := fmt.Sprintf("%dS\n%d %d\n", use.Limit, use.Size, use.Count)
	if err := safefile.WriteFile(filepath.Join(s.Root, MaildirsizeName), []byte(text), 0600); err != nil {
		return fmt.Errorf("mailstore: %w", err)
	}
	return nil
}

// AddQuota appends one change to maildirsize, if there is one (without it
// the next Quota scans anyway). One write(2) with O_APPEND, so that lines
// of concurrent writers do not mix.
func (s *Store) AddQuota(size, count int64) error {
	f, err := os.OpenFile(filepath.Join(s.Root, MaildirsizeName), os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mailstore: %w", err)
	}
	_, err = f.Write([]byte(strconv.FormatInt(size, 10) + " " + strconv.FormatInt(count, 10) + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mailstore: maildirsize: %w", err)
	}
	return nil
}
