package privsep

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// A spawner is a small process that stays root so that a daemon which has
// dropped its privileges can still start workers under another account:
// `queue run`, running as mailsrv-queue, gets its `deliver --lmtp` workers
// started as mailsrv-mail (qmail's qmail-lspawn plays this part). It is
// fixed at its start to one program and one account, and listens only on a
// socket pair it shares with its parent, so all the parent can ever ask of
// it is "one more worker, connected to this socket".
//
// The protocol on the SOCK_SEQPACKET pair: the parent sends a one-byte
// message carrying one descriptor (SCM_RIGHTS), a stream socket; the
// spawner starts the program with that socket as its stdin and stdout and
// answers "ok PID" or "err REASON". It ends when the parent closes its
// end.

// SpawnPair makes the socket pair: the parent keeps the first (see
// NewSpawner), the spawner gets the second as a file (see ServeSpawn).
func SpawnPair() (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "spawn-parent"), os.NewFile(uintptr(fds[1]), "spawn-child"), nil
}

// MaxWorkers bounds the workers of one spawner alive at once, so that a
// parent gone wrong cannot fill the process table as another account.
var MaxWorkers int32 = 256

// ServeSpawn answers requests on f until the parent closes it, starting
// argv as account a for each (the spawner side), at most MaxWorkers alive
// at once.
func ServeSpawn(f *os.File, argv []string, a Account, log *slog.Logger) error {
	c, err := net.FileConn(f)
	if err != nil {
		return fmt.Errorf("spawner socket: %w", err)
	}
	_ = f.Close()
	conn, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("spawner socket: not a unix socket")
	}
	defer func() { _ = conn.Close() }()
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(4))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if n == 0 && oobn == 0 {
			return nil // the parent has gone
		}
		if err != nil {
			return fmt.Errorf("spawner: %w", err)
		}
		reply := "err "
		if pid, err := spawnOne(oob[:oobn], argv, a, log); err != nil {
			reply += err.Error()
		} else {
			reply = "ok " + strconv.Itoa(pid)
		}
		if _, err := conn.Write([]byte(reply)); err != nil {
			return fmt.Errorf("spawner: %w", err)
		}
	}
}

// live counts the workers started and not yet ended.
var live atomic.Int32

// spawnOne starts one worker on the descriptor in oob and returns its PID.
func spawnOne(oob []byte, argv []string, a Account, log *slog.Logger) (int, error) {
	fd, err := oneFD(oob)
	if err != nil {
		return 0, err
	}
	if live.Load() >= MaxWorkers {
		_ = syscall.Close(fd)
		return 0, fmt.Errorf("%d workers alive already", live.Load())
	}
	sock := os.NewFile(uintptr(fd), "worker")
	defer func() { _ = sock.Close() }()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sock, sock, os.Stderr
	cmd.SysProcAttr = a.SysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Warn("spawn failed", "prog", argv[0], "user", a.Name, "err", err)
		return 0, err
	}
	live.Add(1)
	go func() {
		defer live.Add(-1)
		err := cmd.Wait()
		if err != nil {
			log.Warn("worker ended", "prog", argv[0], "pid", cmd.Process.Pid, "err", err)
		}
	}()
	return cmd.Process.Pid, nil
}

func oneFD(oob []byte) (int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return -1, errors.New("expected one control message")
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
		return -1, errors.New("expected one descriptor")
	}
	return fds[0], nil
}

// Spawner is the parent's side: it asks the spawner for workers.
type Spawner struct {
	mu   sync.Mutex
	conn *net.UnixConn
	done chan struct{} // closed when a spawner from StartSpawner has ended
}

// NewSpawner wraps the parent's end of SpawnPair.
func NewSpawner(f *os.File) (*Spawner, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("spawner socket: %w", err)
	}
	_ = f.Close()
	conn, ok := c.(*net.UnixConn)
	if !ok {
		return nil, errors.New("spawner socket: not a unix socket")
	}
	return &Spawner{conn: conn}, nil
}

// Spawn asks for one worker and returns the connection to its stdin and
// stdout, and its PID.
func (s *Spawner) Spawn() (net.Conn, int, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "worker-parent"), os.NewFile(uintptr(fds[1]), "worker-child")
	pid, err := s.request(int(theirs.Fd()))
	_ = theirs.Close()
	if err != nil {
		_ = ours.Close()
		return nil, 0, err
	}
	conn, err := net.FileConn(ours)
	_ = ours.Close()
	if err != nil {
		return nil, 0, err
	}
	return conn, pid, nil
}

func (s *Spawner) request(fd int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.conn.WriteMsgUnix([]byte{1}, syscall.UnixRights(fd), nil); err != nil {
		return 0, fmt.Errorf("spawner: %w", err)
	}
	buf := make([]byte, 512)
	n, err := s.conn.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("spawner: %w", err)
	}
	if why, failed := strings.CutPrefix(string(buf[:n]), "err "); failed {
		return 0, fmt.Errorf("spawner: %s", why)
	}
	reply, _ := strings.CutPrefix(string(buf[:n]), "ok ")
	pid, err := strconv.Atoi(reply)
	if err != nil {
		return 0, fmt.Errorf("spawner: bad reply %q", reply)
	}
	return pid, nil
}

// Close ends the spawner (it sees its parent go).
func (s *Spawner) Close() error { return s.conn.Close() }

// StartSpawner starts argv, a program that calls ServeSpawn on descriptor
// 3 (`queue spawn`), and returns the parent's side. The spawner keeps the
// privileges of the caller: call it before Drop.
func StartSpawner(argv []string) (*Spawner, error) {
	parent, child, err := SpawnPair()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	err = cmd.Start()
	_ = child.Close()
	if err != nil {
		_ = parent.Close()
		return nil, fmt.Errorf("start spawner: %w", err)
	}
	sp, err := NewSpawner(parent)
	if err != nil {
		return nil, err
	}
	sp.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(sp.done)
	}()
	return sp, nil
}

// Done is closed when the spawner started by StartSpawner has ended (nil
// for NewSpawner's): the parent, which cannot start another without root,
// should stop and let its supervisor start it afresh.
func (s *Spawner) Done() <-chan struct{} { return s.done }
