package mailstore

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A lock left by a process of this host that died (SIGKILL while it held
// it) is broken at once; one whose holder lives is not.
func TestLockOfDeadHolderBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	content := fmt.Sprintf("%s.%s.%d.00aa %d\n", path, hostname, dead, time.Now().Unix())
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if !holderGone(path, []byte(content)) {
		t.Fatalf("holder %d reported alive", dead)
	}
	alive := fmt.Sprintf("%s.%s.%d.00aa %d\n", path, hostname, os.Getpid(), time.Now().Unix())
	if holderGone(path, []byte(alive)) {
		t.Fatal("live holder reported gone")
	}
	other := fmt.Sprintf("%s.%s.%d.00aa %d\n", path, "other-host.example", dead, time.Now().Unix())
	if holderGone(path, []byte(other)) {
		t.Fatal("another host's holder judged by a local pid")
	}
	// Without the check, lock would time out: the file is younger than
	// staleLock.
	unlock, err := lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}
