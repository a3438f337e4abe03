package privsep

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary plays the spawner (and the dropping daemon) when these
// are set.
const (
	envSpawner = "PRIVSEP_TEST_SPAWNER"
	envDrop    = "PRIVSEP_TEST_DROP"
	envMax     = "PRIVSEP_TEST_MAX"
)

func TestMain(m *testing.M) {
	if os.Getenv(envSpawner) != "" {
		if n, err := strconv.Atoi(os.Getenv(envMax)); err == nil {
			MaxWorkers = int32(n)
		}
		a, err := Lookup(strconv.Itoa(os.Getuid()))
		if err == nil {
			err = ServeSpawn(os.NewFile(3, "spawn"), []string{"cat"}, a, slog.Default())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if name := os.Getenv(envDrop); name != "" {
		if err := DropTo(name); err != nil {
			fmt.Println("drop:", err)
			os.Exit(1)
		}
		fmt.Println(os.Getuid(), os.Geteuid(), syscall.Setuid(0) != nil)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startTestSpawner(t *testing.T) *Spawner {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envSpawner, "1")
	sp, err := StartSpawner([]string{self})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// Workers started by the spawner talk on the socket they were given.
func TestSpawnWorkers(t *testing.T) {
	sp := startTestSpawner(t)
	defer sp.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echo(sp, fmt.Sprintf("worker %d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func echo(sp *Spawner, msg string) error {
	conn, pid, err := sp.Spawn()
	if err != nil {
		return err
	}
	defer conn.Close()
	if pid <= 0 {
		return fmt.Errorf("pid %d", pid)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("worker said %q, want %q", got, msg)
	}
	return nil
}

// At most MaxWorkers (4 in this test's spawner) live at once; one more
// may start when one ends.
func TestSpawnLimit(t *testing.T) {
	t.Setenv(envMax, "4")
	sp := startTestSpawner(t)
	defer sp.Close()
	var conns []net.Conn
	for range 4 {
		conn, _, err := sp.Spawn()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	if _, _, err := sp.Spawn(); err == nil || !strings.Contains(err.Error(), "alive") {
		t.Fatalf("fifth worker: %v, want a refusal", err)
	}
	_ = conns[0].Close() // cat ends at end of input
	var err error
	for range 100 { // the spawner sees the end when it reaps it
		var conn net.Conn
		if conn, _, err = sp.Spawn(); err == nil {
			conns[0] = conn
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// A spawner that has gone gives an error, not a hang.
func TestSpawnerGone(t *testing.T) {
	sp := startTestSpawner(t)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.Spawn(); err == nil {
		t.Fatal("Spawn on a closed spawner succeeded")
	}
}

// A malformed request (no descriptor) is answered with an error and the
// spawner goes on.
func TestSpawnBadRequest(t *testing.T) {
	sp := startTestSpawner(t)
	defer sp.Close()
	if _, err := sp.conn.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := sp.conn.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "err ") {
		t.Fatalf("reply %q, %v; want an err reply", buf[:n], err)
	}
	if err := echo(sp, "still there"); err != nil {
		t.Fatal(err)
	}
}

// Drop, as root, leaves no way back; without root it refuses.
func TestDrop(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envDrop+"=nobody")
	out, err := cmd.CombinedOutput()
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(string(out), ErrNotRoot.Error()) {
			t.Fatalf("drop without root: %v %s", err, out)
		}
		return
	}
	want := fmt.Sprintf("%d %d true\n", nobody.UID, nobody.UID)
	if err != nil || string(out) != want {
		t.Fatalf("drop: %v %q, want %q", err, out, want)
	}
}
