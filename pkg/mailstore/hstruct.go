package mailstore

import (
	"bytes"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// A header cache entry may also keep what the caller derives from the
// whole message and would otherwise read every file for: imap keeps the
// BODYSTRUCTURE it sends (at most hcMaxStructure bytes), so that a warm
// folder's BODYSTRUCTURE needs no message file. It is kept and checked as
// the header is (hcache.go), in the same record.

// ReadWhole is Read for a caller that derives something from the whole
// message to keep beside its header: keep (a no-op outside a HeaderBatch)
// records it with the identity of the file that was read.
func (f *Folder) ReadWhole(base string) (data []byte, mtime time.Time, keep func(structure []byte), err error) {
	hc := f.hc
	if hc == nil || !hc.batch {
		data, mtime, err = f.Read(base)
		return data, mtime, func([]byte) {}, err
	}
	if !hc.begun {
		hc.begin(f)
	}
	var st syscall.Stat_t
	var raw []byte
	err = f.retry(base, func(p string) error {
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		if err := syscall.Fstat(int(fh.Fd()), &st); err != nil {
			return err
		}
		raw, err = io.ReadAll(fh)
		return err
	})
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	mtime = time.Unix(0, st.Mtim.Nano())
	keep = func(structure []byte) {
		if len(structure) == 0 || len(structure) > hcMaxStructure {
			return
		}
		hdr, err := readHeaderBlock(bytes.NewReader(raw[:min(len(raw), maxHeader)]))
		if err != nil {
			return
		}
		kept, whole, ok := reduceHeader(ToCRLF(hdr))
		if !ok {
			return
		}
		e := hcEntry{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), whole: whole, structure: structure}
		if hc.trusted && strings.HasPrefix(f.names[base], "cur/") {
			e.stamp = hc.cur
		}
		hc.add(base, e, kept)
		if len(hc.pendData) >= hcPendingMax {
			if err := hc.flush(f); err != nil {
				f.cacheErr = err
			}
		}
	}
	return ToCRLF(raw), mtime, keep, nil
}

// CachedStructure returns what KeepStructure kept for base, with the
// header (holding fields, as ReadHeaderFields) and the mtime, when the
// entry may be used; ok is false when there is none (read the message),
// and err ErrGone when the message is gone.
func (f *Folder) CachedStructure(base string, fields []string) (hdr, structure []byte, mtime time.Time, ok bool, err error) {
	if f.hc == nil || !f.hc.batch {
		return nil, nil, time.Time{}, false, nil
	}
	e, hdr, ok, err := f.cached(base, fields)
	if err != nil || !ok || len(e.structure) == 0 {
		return nil, nil, time.Time{}, false, err
	}
	return hdr, e.structure, time.Unix(0, e.mtime), true, nil
}
