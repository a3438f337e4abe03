package mailstore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// modSeqChildEnv makes TestModSeqSurvivesSIGKILL, run again by itself in
// a child process, the writer it kills: it changes flags in the folder
// forever, printing HIGHESTMODSEQ after each change has been written.
const modSeqChildEnv = "MAILSTORE_MODSEQ_CHILD"

func modSeqChild(dir string) {
	p := &process{f: &Folder{Name: "INBOX", Dir: dir}, ms: NewModSeqs(dir)}
	snap, _, err := p.f.Sync(false)
	if err == nil {
		err = p.ms.Sync(p.f, snap)
	}
	for i := 0; err == nil; i++ {
		msg := snap.Msgs[i%len(snap.Msgs) : i%len(snap.Msgs)+1]
		_, err = p.ms.SetFlags(p.f, msg, false, 0, func(f Flags) Flags {
			if f.Has('S') {
				return f.With("", "S")
			}
			return f.With("S", "")
		})
		fmt.Println(p.ms.Highest())
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// A writer killed at any moment (mid-append, mid-rewrite, holding the
// lock) leaves a record that the next process reads or rebuilds, with
// HIGHESTMODSEQ no lower than any the writer reported.
func TestModSeqSurvivesSIGKILL(t *testing.T) {
	if dir := os.Getenv(modSeqChildEnv); dir != "" {
		modSeqChild(dir) // does not return
	}
	s := newStore(t)
	deliver(t, s.Root, 3)
	openProcess(t, s.Root).sync(t)
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestModSeqSurvivesSIGKILL$")
		cmd.Env = append(os.Environ(), modSeqChildEnv+"="+s.Root)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var last uint64
		for n := 0; n < 40+round*120 && sc.Scan(); n++ {
			v, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			last = v
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if last == 0 {
			t.Fatal("the writer reported nothing")
		}
		// A lock left by the killed writer is broken after staleLock; do
		// now what breakStale would do then.
		_ = os.Remove(filepath.Join(s.Root, uidListLock))
		p := openProcess(t, s.Root)
		p.sync(t)
		if p.ms.Highest() < last {
			t.Fatalf("round %d: highest %d after the kill, the writer had reported %d", round, p.ms.Highest(), last)
		}
	}
}
