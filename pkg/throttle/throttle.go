// Package throttle slows down and then refuses password guessing. It
// counts failed logins per client address and per account in small files
// under ROOT/run/throttle/, so that every daemon process on the host (any
// number of smtpd, imapd and pop3d, started by tcpserver per connection or
// listening themselves) shares one count.
//
// Each key (an address, or an account name) has one file, named by a hash
// of the key, holding its count of recent failures, the time of the last
// one and the end of its lockout. A file is read and rewritten under an
// exclusive flock(2) on itself, so concurrent attempts from several
// processes are all counted. flock is enough because the state belongs to
// one host: another host behind the same mailbox store keeps its own
// counts (the directory must then not be shared over NFS).
//
// An attempt is counted as a failure when it starts (Attempt), so that
// parallel connections see each other's guesses at once, and forgiven when
// it succeeds (Succeeded). The Policy turns the count into a delay before
// the password is checked, then into a refusal for a lockout period; both
// end by themselves. Old files are removed by Prune, which Attempt runs now
// and then.
package throttle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dir is the directory of the state files, relative to the root.
const Dir = "run/throttle"

// Kind says what a key counts.
type Kind string

const (
	KindIP      Kind = "ip"      // a client address (IPv6: its /64)
	KindAccount Kind = "account" // a user name as the client typed it, lower case
)

// Key is one thing failures are counted against.
type Key struct {
	Kind Kind
	Name string
}

// IPKey returns the key of a client address. IPv6 clients are counted by
// their /64, which one customer usually holds whole.
func IPKey(ip netip.Addr) Key {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return Key{KindIP, p.String()}
	}
	return Key{KindIP, ip.String()}
}

// AccountKey returns the key of an account name, known or not.
func AccountKey(user string) Key { return Key{KindAccount, strings.ToLower(user)} }

// file returns the state file's name: the kind and a hash of the name, so
// that any name (long, with '/' or NUL) makes a short, safe file name and
// the directory does not list user names.
func (k Key) file() string {
	sum := sha256.Sum256([]byte(string(k.Kind) + "\x00" + k.Name))
	return string(k.Kind) + "-" + hex.EncodeToString(sum[:16])
}

// Policy is how one kind of key is throttled.
type Policy struct {
	Free      int           // failures in a row that cost no delay
	Delay     time.Duration // delay after the first failure past Free; doubles with each further one
	MaxDelay  time.Duration // the delay never exceeds this
	LockAfter int           // this many failures within Window start a lockout
	Lockout   time.Duration // how long a lockout refuses every attempt
	Window    time.Duration // failures are forgotten this long after the last one
}

// Default policies. An address is locked out sooner than an account: an
// account lockout also locks out its owner, which is what an attacker
// wants when he cannot guess.
var (
	DefaultIP      = Policy{Free: 3, Delay: time.Second, MaxDelay: 30 * time.Second, LockAfter: 10, Lockout: 15 * time.Minute, Window: 15 * time.Minute}
	DefaultAccount = Policy{Free: 3, Delay: time.Second, MaxDelay: 30 * time.Second, LockAfter: 20, Lockout: 15 * time.Minute, Window: 15 * time.Minute}
)

// delay returns the wait before the attempt that makes the count n.
func (p Policy) delay(n int) time.Duration {
	if n <= p.Free || p.Delay <= 0 {
		return 0
	}
	d := p.Delay
	for i := p.Free + 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Throttle counts failures under one directory. It is safe for concurrent
// use by goroutines and by processes.
type Throttle struct {
	Dir     string
	IP      Policy
	Account Policy
	// Now is the clock; tests replace it.
	Now func() time.Time
	// PruneEvery: on average one Attempt in PruneEvery also prunes.
	PruneEvery int
}

// New returns a Throttle keeping its files in dir, with the default
// policies.
func New(dir string) *Throttle {
	return &Throttle{Dir: dir, IP: DefaultIP, Account: DefaultAccount, Now: time.Now, PruneEvery: 256}
}

// Open returns the Throttle of a mailsrv root: files in ROOT/run/throttle,
// policies from ROOT/etc/throttle if it exists (see LoadPolicies).
func Open(root string) (*Throttle, error) {
	t := New(filepath.Join(root, Dir))
	if err := t.LoadPolicies(filepath.Join(root, "etc/throttle")); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Throttle) policy(k Kind) Policy {
	if k == KindIP {
		return t.IP
	}
	return t.Account
}

// Verdict is the outcome of Attempt.
type Verdict struct {
	Delay  time.Duration // wait this long before checking the password
	Locked bool          // refuse the attempt without checking the password
	Until  time.Time     // when Locked: the end of the lockout
	Key    Key           // the key that decided the verdict (for logs)
}

// state is the content of one file.
type state struct {
	fails int
	last  time.Time
	until time.Time // end of the lockout, zero if none
}

// Attempt starts a login attempt on every key (typically the client's
// address and the account): it counts it as a failure on each, and
// returns the longest delay, or a refusal if any key is locked out. A
// refused attempt is not counted, so a lockout is not prolonged by the
// attempts it refuses. Once a key has LockAfter failures within its
// Window, the next attempt starts its lockout and is refused.
func (t *Throttle) Attempt(keys ...Key) (Verdict, error) {
	now := t.Now()
	var v Verdict
	err := t.update(keys, func(sts []state) bool {
		for i, k := range keys {
			st := t.current(k.Kind, sts[i], now)
			sts[i] = st
			if st.until.After(now) {
				v = Verdict{Locked: true, Until: st.until, Key: k}
			}
		}
		if !v.Locked {
			for i, k := range keys {
				p := t.policy(k.Kind)
				if p.LockAfter > 0 && sts[i].fails >= p.LockAfter {
					sts[i] = state{fails: 0, last: now, until: now.Add(p.Lockout)}
					if !v.Locked || sts[i].until.After(v.Until) {
						v = Verdict{Locked: true, Until: sts[i].until, Key: k}
					}
				}
			}
		}
		if v.Locked {
			return true
		}
		for i, k := range keys {
			sts[i].fails++
			sts[i].last = now
			if d := t.policy(k.Kind).delay(sts[i].fails); d > v.Delay {
				v.Delay, v.Key = d, k
			}
		}
		return true
	})
	if err == nil && t.PruneEvery > 0 && rand.IntN(t.PruneEvery) == 0 {
		err = t.Prune()
	}
	return v, err
}

// current returns st as of now: a lockout that has ended and failures
// older than the window are forgotten.
func (t *Throttle) current(k Kind, st state, now time.Time) state {
	if !st.until.IsZero() && !st.until.After(now) {
		return state{}
	}
	if st.until.IsZero() && now.Sub(st.last) > t.policy(k).Window {
		return state{}
	}
	return st
}

// Succeeded forgives the attempt counted by Attempt for a login that
// succeeded: an address's count goes down by one, so that the users
// behind one address do not lock each other out by logging in; an
// account's count goes back to zero, its owner has just proved who he is.
// A lockout stays.
func (t *Throttle) Succeeded(keys ...Key) error {
	now := t.Now()
	return t.update(keys, func(sts []state) bool {
		for i, k := range keys {
			st := t.current(k.Kind, sts[i], now)
			if k.Kind == KindIP {
				st.fails = max(st.fails-1, 0)
			} else {
				st.fails = 0
			}
			sts[i] = st
		}
		return true
	})
}

// Status returns the verdict an attempt would get now, without counting.
func (t *Throttle) Status(keys ...Key) (Verdict, error) {
	now := t.Now()
	var v Verdict
	err := t.update(keys, func(sts []state) bool {
		for i, k := range keys {
			st := t.current(k.Kind, sts[i], now)
			if st.until.After(now) {
				v = Verdict{Locked: true, Until: st.until, Key: k}
				return false
			}
			if d := t.policy(k.Kind).delay(st.fails + 1); d > v.Delay {
				v.Delay, v.Key = d, k
			}
		}
		return false
	})
	return v, err
}

// Failures returns the current count of a key (for tests and mailctl).
func (t *Throttle) Failures(k Key) (int, error) {
	var n int
	err := t.update([]Key{k}, func(sts []state) bool {
		n = t.current(k.Kind, sts[0], t.Now()).fails
		return false
	})
	return n, err
}

// update locks the files of keys (in a fixed order, so that two processes
// never wait for each other), reads them, calls fn and, if it returns true,
// writes them back.
func (t *Throttle) update(keys []Key, fn func([]state) bool) error {
	if err := os.MkdirAll(t.Dir, 0o770); err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a].file(), keys[b].file()) })
	files := make([]*os.File, len(keys))
	defer func() {
		for _, f := range files {
			if f != nil {
				_ = f.Close() // closing releases the lock
			}
		}
	}()
	sts := make([]state, len(keys))
	for _, i := range order {
		if i > 0 && slices.IndexFunc(keys[:i], func(k Key) bool { return k == keys[i] }) >= 0 {
			return fmt.Errorf("throttle: key %s given twice", keys[i].Kind)
		}
		f, err := t.lockFile(keys[i].file())
		if err != nil {
			return err
		}
		files[i] = f
		if sts[i], err = readState(f); err != nil {
			return err
		}
	}
	if !fn(sts) {
		return nil
	}
	for i, f := range files {
		if err := writeState(f, sts[i]); err != nil {
			return err
		}
	}
	return nil
}

// lockFile opens and locks one state file. Prune may remove a file while
// we wait for its lock; we then hold the lock of a deleted file, notice it
// by comparing inodes, and start again.
func (t *Throttle) lockFile(name string) (*os.File, error) {
	path := filepath.Join(t.Dir, name)
	for range 100 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o660)
		if err != nil {
			return nil, fmt.Errorf("throttle: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("throttle: lock %s: %w", path, err)
		}
		shareWithGroup(f)
		if same, err := samePath(f, path); err != nil || same {
			if err != nil {
				_ = f.Close()
				return nil, err
			}
			return f, nil
		}
		_ = f.Close()
	}
	return nil, fmt.Errorf("throttle: %s keeps being removed", path)
}

func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("throttle: %w", err)
	}
	b, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("throttle: %w", err)
	}
	return os.SameFile(a, b), nil
}

// recordSize is the fixed size of a state file: one write of it at offset
// 0 replaces the whole content, so a reader (who holds the lock anyway)
// never sees a mix of two versions and no truncation is needed.
const recordSize = 64

// readState parses "fails last until" (decimal, Unix nanoseconds), padded
// with spaces. An empty file is a fresh key; a damaged one (a crash in the
// middle of a write) too, which errs on the side of the client.
func readState(f *os.File) (state, error) {
	buf := make([]byte, recordSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return state{}, fmt.Errorf("throttle: read %s: %w", f.Name(), err)
	}
	fields := strings.Fields(string(buf[:n]))
	if len(fields) != 3 {
		return state{}, nil
	}
	var nums [3]int64
	for i, s := range fields {
		if nums[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return state{}, nil
		}
	}
	st := state{fails: int(nums[0])}
	if nums[1] != 0 {
		st.last = time.Unix(0, nums[1])
	}
	if nums[2] != 0 {
		st.until = time.Unix(0, nums[2])
	}
	return st, nil
}

func writeState(f *os.File, st state) error {
	unix := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixNano()
	}
	line := fmt.Sprintf("%d %d %d", st.fails, unix(st.last), unix(st.until))
	rec := []byte(fmt.Sprintf("%-*s\n", recordSize-1, line))
	if _, err := f.WriteAt(rec, 0); err != nil {
		return fmt.Errorf("throttle: write %s: %w", f.Name(), err)
	}
	return nil
}

// Prune removes the files of keys with nothing left to remember: no
// lockout running and no failure within the window. Disk use is thus
// bounded by the number of addresses and accounts that failed recently.
func (t *Throttle) Prune() error {
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("throttle: %w", err)
	}
	now := t.Now()
	for _, e := range entries {
		kind, _, ok := strings.Cut(e.Name(), "-")
		if !ok || (kind != string(KindIP) && kind != string(KindAccount)) {
			continue
		}
		if err := t.pruneOne(e.Name(), Kind(kind), now); err != nil {
			return err
		}
	}
	return nil
}

func (t *Throttle) pruneOne(name string, kind Kind, now time.Time) error {
	path := filepath.Join(t.Dir, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("throttle: lock %s: %w", path, err)
	}
	if same, err := samePath(f, path); err != nil || !same {
		return err
	}
	st, err := readState(f)
	if err != nil {
		return err
	}
	if t.current(kind, st, now) != (state{}) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("throttle: %w", err)
	}
	return nil
}

// shareWithGroup makes a state file this process owns writable by its
// group whatever the umask: under mailctl init --system the daemons run as
// three accounts that share the group mailsrv (run/throttle is
// set-group-ID), and each must update the counts the others wrote.
func shareWithGroup(f *os.File) {
	fi, err := f.Stat()
	if err != nil || fi.Mode().Perm()&0o060 == 0o060 {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
		_ = f.Chmod(0o660)
	}
}
