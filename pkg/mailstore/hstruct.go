package mailstore

import (
	"io"
	"os"
	"syscall"
	"time"
)

// A header cache entry may also keep what the caller derives from the
// whole message and would otherwise read every file for: imap keeps the
// BODYSTRUCTURE it sends (at most hcMaxStructure bytes), so that a warm
// folder's BODYSTRUCTURE needs no message file. It is kept and checked as
// the header is (hcache.go), in the same record, and given back by
// CachedKept (hkept.go).

// ReadWhole is Read for a caller that derives something from the whole
// message to keep beside its header (hkept.go): its Keeper records it with
// the identity of the file that was read (an entry made from its header
// when there is none).
func (f *Folder) ReadWhole(base string) (data []byte, mtime time.Time, keep Keeper, err error) {
	hc := f.hc
	if hc == nil || !hc.batch {
		data, mtime, err = f.Read(base)
		return data, mtime, Keeper{}, err
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
		return nil, time.Time{}, Keeper{}, err
	}
	keep = Keeper{f: f, base: base, ino: st.Ino, size: st.Size, mtim: st.Mtim.Nano(), raw: raw}
	return ToCRLF(raw), time.Unix(0, st.Mtim.Nano()), keep, nil
}
