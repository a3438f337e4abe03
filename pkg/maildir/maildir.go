// Package maildir owns the durable side of Maildir++ (the directory layout
// of https://cr.yp.to/proto/maildir.html with Courier's ++ folders): making
// a mailbox, and delivering one message into it so that a success reported
// to the caller survives a crash. Making the directories, the flag letters
// and the 36-hour clean-up of tmp/ come from github.com/emersion/go-maildir;
// the delivery path is ours because it fsyncs the file and the directory,
// which that library does not, and listing for IMAP and POP3 is package
// mailstore's and pop3's own, which read each directory once and keep the
// names without a Message per file (100,000-message folders).
package maildir

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	gomaildir "github.com/emersion/go-maildir"

	"mailsrv/pkg/lineend"
	"mailsrv/pkg/safefile"
)

// SpecialFolders are created in every new mailbox, with their RFC 6154
// special-use attribute.
var SpecialFolders = []struct{ Name, Use string }{
	{"Drafts", `\Drafts`}, {"Sent", `\Sent`}, {"Trash", `\Trash`},
	{"Junk", `\Junk`}, {"Archive", `\Archive`},
}

// Create makes the Maildir++ mailbox dir (INBOX, with tmp, new and cur) and
// its special folders (.Sent and the others). It is idempotent.
func Create(dir string) error {
	if err := Init(dir); err != nil {
		return err
	}
	for _, f := range SpecialFolders {
		if err := Init(filepath.Join(dir, "."+f.Name)); err != nil {
			return err
		}
		mf := filepath.Join(dir, "."+f.Name, "maildirfolder")
		if err := os.WriteFile(mf, nil, 0600); err != nil {
			return err
		}
	}
	return nil
}

// Init makes one Maildir (dir and its tmp, new, cur), each mode 0700, and
// the directories above it.
func Init(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0700); err != nil {
		return err
	}
	return gomaildir.Dir(dir).Init()
}

// CleanTmp removes files left in dir/tmp for more than 36 hours (a delivery
// that died half-way), as the Maildir specification asks readers to do.
func CleanTmp(dir string) error {
	return gomaildir.Dir(dir).Clean()
}

var (
	seq      atomic.Uint64
	hostname = func() string {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		return strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`).Replace(h)
	}()
)

// UniqueName returns a new Maildir base name: seconds, then
// M(microseconds)P(pid)Q(counter)R(random), then the host name, as Dovecot
// and Courier write them, so that two deliveries never collide, even from
// several hosts sharing one store.
func UniqueName(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return strconv.FormatInt(now.Unix(), 10) + ".M" + strconv.Itoa(now.Nanosecond()/1000) +
		"P" + strconv.Itoa(os.Getpid()) + "Q" + strconv.FormatUint(seq.Add(1), 10) +
		"R" + hex.EncodeToString(r[:]) + "." + hostname
}

// TempError marks a delivery failure that may pass (a full disk, a missing
// directory): the caller should try again later.
type TempError struct{ Err error }

func (e *TempError) Error() string { return e.Err.Error() }
func (e *TempError) Unwrap() error { return e.Err }

// Deliver writes header followed by body into dir/new, durably: the file is
// created in tmp/ (O_EXCL), written, fsynced, linked into new/ under a name
// with its size (",S=" and the CRLF size ",W=", which IMAP and POP3 use
// without opening the file), unlinked from tmp/, and new/ is fsynced. Only
// then does Deliver return the new file's path. Any failure leaves nothing
// in new/ and is returned as a *TempError unless the body reader failed.
func Deliver(dir string, header []byte, body io.Reader) (string, error) {
	return Store(dir, Options{}, header, body)
}

// Options says where and how Store writes a message.
type Options struct {
	Cur   bool      // into cur/ rather than new/ (IMAP APPEND)
	Flags string    // with Cur: the flag letters after ":2,"
	MTime time.Time // the file's time (IMAP INTERNALDATE); zero: now
	ToLF  bool      // store CRLF line endings as LF, as deliveries are
}

// Store is Deliver with options: the one durable write path of every
// message that enters a Maildir (deliver, IMAP APPEND).
func Store(dir string, o Options, header []byte, body io.Reader) (string, error) {
	name := UniqueName(time.Now())
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return "", &TempError{fmt.Errorf("maildir %s: %w", dir, err)}
	}
	bw := bufio.NewWriterSize(f, 64*1024)
	cw := &countWriter{w: bw}
	var w io.Writer = cw
	lf := &lineend.LFWriter{W: cw}
	if o.ToLF {
		w = lf
	}
	_, werr := w.Write(header)
	var rerr error
	if werr == nil {
		_, werr, rerr = copyBody(w, body)
	}
	if werr == nil && o.ToLF {
		werr = lf.Flush()
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil && !o.MTime.IsZero() {
		werr = os.Chtimes(tmp, o.MTime, o.MTime)
	}
	if werr != nil || rerr != nil {
		_ = os.Remove(tmp)
		if rerr != nil {
			return "", rerr
		}
		return "", &TempError{fmt.Errorf("maildir %s: %w", dir, werr)}
	}
	sub, final := "new", name+",S="+strconv.FormatInt(cw.n, 10)+",W="+strconv.FormatInt(cw.n+cw.bareLF, 10)
	if o.Cur {
		sub, final = "cur", final+":2,"+o.Flags
	}
	final = filepath.Join(dir, sub, final)
	err = os.Link(tmp, final)
	_ = os.Remove(tmp)
	if err == nil {
		err = safefile.SyncDir(filepath.Join(dir, sub))
		if err != nil {
			_ = os.Remove(final)
		}
	}
	if err != nil {
		return "", &TempError{fmt.Errorf("maildir %s: %w", dir, err)}
	}
	return final, nil
}

var crByte = []byte{'\r'}

// copyBody copies like io.Copy but tells a write error from a read error.
func copyBody(w io.Writer, r io.Reader) (n int64, werr, rerr error) {
	buf := make([]byte, 32*1024)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			m, e := w.Write(buf[:k])
			n += int64(m)
			if e != nil {
				return n, e, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil, nil
		}
		if err != nil {
			return n, nil, err
		}
	}
}

// countWriter counts bytes and line feeds not preceded by a carriage
// return, which is what converting to CRLF adds.
type countWriter struct {
	w      io.Writer
	n      int64
	bareLF int64
	lastCR bool
}

func (c *countWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		lf := int64(bytes.Count(p, lfByte))
		crlf := int64(bytes.Count(p, crlfBytes))
		if c.lastCR && p[0] == '\n' {
			crlf++ // a CRLF split across two writes
		}
		c.bareLF += lf - crlf
		c.lastCR = p[len(p)-1] == '\r'
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var (
	lfByte    = []byte{'\n'}
	crlfBytes = []byte("\r\n")
)
