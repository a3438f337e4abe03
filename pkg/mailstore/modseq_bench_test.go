package mailstore

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkModSeqFirst is the first CONDSTORE SELECT of a folder: the
// record is made, one line per message.
func BenchmarkModSeqFirst(b *testing.B) {
	dir := benchFolder(b)
	f := &Folder{Name: "INBOX", Dir: dir}
	snap, _, err := f.Sync(true)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := os.Remove(filepath.Join(dir, ModSeqName)); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		ms := NewModSeqs(dir)
		if err := ms.Sync(f, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkModSeqNewSession is a later CONDSTORE SELECT: a new session
// reads the record and compares it with the folder; nothing is written.
func BenchmarkModSeqNewSession(b *testing.B) {
	dir := benchFolder(b)
	f := &Folder{Name: "INBOX", Dir: dir}
	snap, _, err := f.Sync(true)
	if err != nil {
		b.Fatal(err)
	}
	if err := NewModSeqs(dir).Sync(f, snap); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ms := NewModSeqs(dir)
		if err := ms.Sync(f, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkModSeqPoll is a CONDSTORE session's look after a command when
// nothing changed.
func BenchmarkModSeqPoll(b *testing.B) {
	dir := benchFolder(b)
	f := &Folder{Name: "INBOX", Dir: dir}
	ms := NewModSeqs(dir)
	snap, _, err := f.Sync(true)
	if err == nil {
		err = ms.Sync(f, snap)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		snap, _, err := f.Sync(true)
		if err == nil {
			err = ms.Sync(f, snap)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
