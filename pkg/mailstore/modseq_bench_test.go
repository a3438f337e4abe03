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

// BenchmarkModSeqNewProcess is a later CONDSTORE SELECT in a new process:
// the record is read and compared with the folder; nothing is written.
func BenchmarkModSeqNewProcess(b *testing.B) {
	benchModSeqNew(b, true)
}

// BenchmarkModSeqNewSession is the same in a process that read the record
// for another session (imapd --listen).
func BenchmarkModSeqNewSession(b *testing.B) {
	benchModSeqNew(b, false)
}

func benchModSeqNew(b *testing.B, newProcess bool) {
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
		if newProcess {
			forgetModSeqs()
		}
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

// BenchmarkModSeqSelectListen is a whole CONDSTORE SELECT in imapd
// --listen after another session's: the folder's listing and record are
// both kept by the process.
func BenchmarkModSeqSelectListen(b *testing.B) {
	dir := benchFolder(b)
	f := &Folder{Name: "INBOX", Dir: dir}
	snap, _, err := f.Sync(true)
	if err == nil {
		err = NewModSeqs(dir).Sync(f, snap)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		f := &Folder{Name: "INBOX", Dir: dir}
		snap, _, err := f.Sync(true)
		if err == nil {
			err = NewModSeqs(dir).Sync(f, snap)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
