package mailstore

import (
	"bytes"
	"strings"
	"time"
)

// Besides the header, a header cache entry keeps what the caller derives
// from a message and sends as it is (imap: the BODYSTRUCTURE, from the
// whole message, hstruct.go; the ENVELOPE, from the header), so that a
// warm folder's FETCH parses nothing. mailstore does not read it: it is
// the caller's bytes, kept and checked with the entry (hcache.go), in the
// same record, and dropped with it.
//
// Measured on bench/imap's last 100 of 100,000 messages (FETCH ENVELOPE,
// imapd --listen): parsing the cached header and its addresses (net/mail)
// was half of the command's CPU time.

// Kept is what the caller derived from one message: nil fields are none.
type Kept struct {
	Structure []byte // from the whole message; at most hcMaxStructure bytes are kept
	Envelope  []byte // from the header; at most hcMaxEnvelope bytes are kept
}

// Keeper adds what the caller derived from a message it read to the
// message's header cache entry (Keep copies the slices), when that entry
// is still of the file that was read (inode, size, mtime). Outside a
// HeaderBatch, or when the header could not be kept, it does nothing; so
// does the zero Keeper. (A value, not a closure: a FETCH of 100,000
// messages gets 100,000 of them.)
type Keeper struct {
	f          *Folder
	base       string
	ino        uint64
	size, mtim int64
	raw        []byte // ReadWhole: the message, whose header makes the entry
}

// ReadHeaderKept is ReadHeaderFields for a caller that derives something
// from the header to keep beside it: with the header it returns what was
// kept for the message and a Keeper for what the caller derives.
func (f *Folder) ReadHeaderKept(base string, fields []string) (hdr []byte, mtime time.Time, kept Kept, keep Keeper, err error) {
	hc := f.hc
	if hc == nil || !hc.batch {
		hdr, mtime, err = f.ReadHeader(base)
		return hdr, mtime, Kept{}, Keeper{}, err
	}
	if !hc.begun {
		hc.begin(f)
	}
	e, hdr, ok, err := f.cached(base, fields)
	if err != nil {
		return nil, time.Time{}, Kept{}, Keeper{}, err
	}
	if ok {
		return hdr, time.Unix(0, e.mtime), Kept{Structure: e.structure, Envelope: e.envelope}, f.keeper(base, e), nil
	}
	hdr, id, err := f.readHeaderCaching(base)
	if err != nil {
		return nil, time.Time{}, Kept{}, Keeper{}, err
	}
	return hdr, time.Unix(0, id.mtime), Kept{}, f.keeper(base, id), nil
}

// CachedKept returns base's header (holding fields, as ReadHeaderFields),
// mtime and what was kept beside it, with a Keeper, when its entry may be
// used; ok is false when there is none, and nothing is read then (the
// caller reads the message); err is ErrGone when the message is gone.
func (f *Folder) CachedKept(base string, fields []string) (hdr []byte, mtime time.Time, kept Kept, keep Keeper, ok bool, err error) {
	if f.hc == nil || !f.hc.batch {
		return nil, time.Time{}, Kept{}, Keeper{}, false, nil
	}
	e, hdr, ok, err := f.cached(base, fields)
	if err != nil || !ok {
		return nil, time.Time{}, Kept{}, Keeper{}, false, err
	}
	return hdr, time.Unix(0, e.mtime), Kept{Structure: e.structure, Envelope: e.envelope}, f.keeper(base, e), true, nil
}

func (f *Folder) keeper(base string, id hcEntry) Keeper {
	return Keeper{f: f, base: base, ino: id.ino, size: id.size, mtim: id.mtime}
}

// Keep adds k to the entry (see Keeper).
func (kp Keeper) Keep(k Kept) {
	if kp.f == nil || kp.f.hc == nil || !kp.f.hc.batch {
		return
	}
	if len(k.Structure) > hcMaxStructure {
		k.Structure = nil
	}
	if len(k.Envelope) > hcMaxEnvelope {
		k.Envelope = nil
	}
	if len(k.Structure) == 0 && len(k.Envelope) == 0 {
		return
	}
	f, hc := kp.f, kp.f.hc
	sl, e, hdr, ok := hc.lookup(kp.base)
	if ok && e.ino == kp.ino && e.size == kp.size && e.mtime == kp.mtim {
		changed := false
		if len(k.Structure) > 0 && !bytes.Equal(k.Structure, e.structure) {
			e.structure, changed = k.Structure, true
		}
		if len(k.Envelope) > 0 && !bytes.Equal(k.Envelope, e.envelope) {
			e.envelope, changed = k.Envelope, true
		}
		if !changed {
			return
		}
	} else {
		if kp.raw == nil {
			return // no entry for this file
		}
		// ReadWhole: an entry made from the header of the message read
		h, err := readHeaderBlock(bytes.NewReader(kp.raw[:min(len(kp.raw), maxHeader)]))
		if err != nil {
			return
		}
		kept, whole, keepable := reduceHeader(nil, ToCRLF(h))
		if !keepable {
			return
		}
		e = hcEntry{ino: kp.ino, size: kp.size, mtime: kp.mtim, whole: whole, structure: k.Structure, envelope: k.Envelope}
		if rel, _ := f.relOf(kp.base); hc.trusted && strings.HasPrefix(rel, "cur/") {
			e.stamp = hc.cur
		}
		hdr, sl = kept, hcSlot{}
	}
	hc.add(kp.base, e, hdr)
	if sl.checked != 0 { // the file was found unchanged at that stamp
		key := hc.key(kp.base)
		nsl := hc.m[key]
		nsl.checked = sl.checked
		hc.m[key] = nsl
	}
	if len(hc.pendData) >= hcPendingMax {
		if err := hc.flush(f); err != nil {
			f.cacheErr = err
		}
	}
}
