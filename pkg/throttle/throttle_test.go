package throttle

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T) (*Throttle, *clock) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	th := New(filepath.Join(t.TempDir(), "throttle"))
	th.Now = c.Now
	th.PruneEvery = 0
	return th, c
}

func TestDelays(t *testing.T) {
	p := Policy{Free: 3, Delay: time.Second, MaxDelay: 10 * time.Second}
	s := time.Second
	want := []time.Duration{0, 0, 0, 1 * s, 2 * s, 4 * s, 8 * s, 10 * s, 10 * s}
	for i, w := range want {
		if got := p.delay(i + 1); got != w {
			t.Errorf("delay(%d) = %v, want %v", i+1, got, w)
		}
	}
}

// TestLockout walks one address through delays, a lockout that refuses
// without counting, and the lockout's end.
func TestLockout(t *testing.T) {
	th, c := newTest(t)
	th.IP = Policy{Free: 2, Delay: time.Second, MaxDelay: 4 * time.Second, LockAfter: 5, Lockout: 10 * time.Minute, Window: time.Hour}
	ip := IPKey(netip.MustParseAddr("192.0.2.1"))
	want := []time.Duration{0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second}
	for i, w := range want {
		v, err := th.Attempt(ip)
		if err != nil {
			t.Fatal(err)
		}
		if v.Locked || v.Delay != w {
			t.Fatalf("attempt %d: %+v, want delay %v", i+1, v, w)
		}
		c.Add(time.Second)
	}
	v, err := th.Attempt(ip)
	if err != nil || !v.Locked || v.Key != ip {
		t.Fatalf("attempt after %d failures: %+v, %v; want locked", th.IP.LockAfter, v, err)
	}
	until := v.Until
	for range 20 {
		c.Add(20 * time.Second)
		if v, _ := th.Attempt(ip); !v.Locked || !v.Until.Equal(until) {
			t.Fatalf("during lockout: %+v, want locked until %v (refusals must not prolong it)", v, until)
		}
	}
	c.Add(until.Sub(c.Now()))
	if v, _ := th.Attempt(ip); v.Locked || v.Delay != 0 {
		t.Fatalf("after the lockout: %+v, want a fresh start", v)
	}
}

func TestWindowForgets(t *testing.T) {
	th, c := newTest(t)
	acct := AccountKey("Ann@Example.org")
	for range 8 {
		if _, err := th.Attempt(acct); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := th.Failures(AccountKey("ann@example.org")); n != 8 {
		t.Fatalf("failures = %d, want 8 (account names are case-insensitive)", n)
	}
	c.Add(th.Account.Window + time.Second)
	if n, _ := th.Failures(acct); n != 0 {
		t.Errorf("failures after the window = %d, want 0", n)
	}
}

func TestSucceeded(t *testing.T) {
	th, _ := newTest(t)
	ip, acct := IPKey(netip.MustParseAddr("192.0.2.1")), AccountKey("ann@example.org")
	for range 3 {
		if _, err := th.Attempt(ip, acct); err != nil {
			t.Fatal(err)
		}
	}
	if err := th.Succeeded(ip, acct); err != nil {
		t.Fatal(err)
	}
	if n, _ := th.Failures(ip); n != 2 {
		t.Errorf("address failures after a success = %d, want 2", n)
	}
	if n, _ := th.Failures(acct); n != 0 {
		t.Errorf("account failures after a success = %d, want 0", n)
	}
	v, err := th.Status(ip, acct)
	if err != nil || v.Locked || v.Delay != 0 {
		t.Errorf("Status = %+v, %v", v, err)
	}
}

// TestAccountLockSparesOthers: an account's lockout refuses that account
// from everywhere, and the refused attempts do not count against the
// addresses.
func TestAccountLock(t *testing.T) {
	th, _ := newTest(t)
	th.Account.LockAfter = 4
	acct := AccountKey("ann@example.org")
	for i := range 4 {
		ip := IPKey(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
		if v, _ := th.Attempt(ip, acct); v.Locked {
			t.Fatalf("attempt %d locked", i)
		}
	}
	other := IPKey(netip.MustParseAddr("198.51.100.1"))
	v, err := th.Attempt(other, acct)
	if err != nil || !v.Locked || v.Key != acct {
		t.Fatalf("fifth attempt: %+v, %v; want account locked", v, err)
	}
	if n, _ := th.Failures(other); n != 0 {
		t.Errorf("the refused attempt counted against the address: %d", n)
	}
	if v, _ := th.Attempt(other, AccountKey("bob@example.org")); v.Locked {
		t.Error("another account from the same address is locked")
	}
}

func TestIPKey(t *testing.T) {
	a := IPKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := IPKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2"))
	c := IPKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c || a.Name != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 keys: %v %v %v; want one /64", a, b, c)
	}
	if k := IPKey(netip.MustParseAddr("::ffff:192.0.2.1")); k.Name != "192.0.2.1" {
		t.Errorf("mapped IPv4 key %v", k)
	}
	if f := AccountKey("../../etc/passwd").file(); strings.ContainsAny(f, "/.") || len(f) > 64 {
		t.Errorf("file name %q", f)
	}
}

// TestParallel: 50 attempts from one address in parallel goroutines are
// all counted, and later ones are delayed.
func TestParallel(t *testing.T) {
	th, _ := newTest(t)
	th.IP.LockAfter = 0
	ip := IPKey(netip.MustParseAddr("192.0.2.9"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var maxDelay time.Duration
	for range 50 {
		wg.Go(func() {
			v, err := th.Attempt(ip)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			maxDelay = max(maxDelay, v.Delay)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n, _ := th.Failures(ip); n != 50 {
		t.Errorf("failures = %d, want 50", n)
	}
	if maxDelay != th.IP.MaxDelay {
		t.Errorf("longest delay %v, want %v", maxDelay, th.IP.MaxDelay)
	}
}

// The helper process: when THROTTLE_HELPER_DIR is set, the test binary
// makes THROTTLE_HELPER_N attempts from 192.0.2.9 and exits.
func TestMain(m *testing.M) {
	if dir := os.Getenv("THROTTLE_HELPER_DIR"); dir != "" {
		n, _ := strconv.Atoi(os.Getenv("THROTTLE_HELPER_N"))
		th := New(dir)
		th.IP.LockAfter, th.Account.LockAfter = 0, 0
		th.PruneEvery = 3 // pruning races with the others' locks
		for range n {
			if _, err := th.Attempt(IPKey(netip.MustParseAddr("192.0.2.9")), AccountKey("ann@example.org")); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProcesses: two processes and this one's goroutines attempt at once;
// every attempt is counted.
func TestProcesses(t *testing.T) {
	th, _ := newTest(t)
	th.Now = time.Now // the helpers use the real clock
	th.IP.LockAfter, th.Account.LockAfter = 0, 0
	th.PruneEvery = 3
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "THROTTLE_HELPER_DIR="+th.Dir, "THROTTLE_HELPER_N=20")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := th.Attempt(IPKey(netip.MustParseAddr("192.0.2.9")), AccountKey("ann@example.org")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	for _, k := range []Key{IPKey(netip.MustParseAddr("192.0.2.9")), AccountKey("ann@example.org")} {
		if n, err := th.Failures(k); err != nil || n != 50 {
			t.Errorf("%s failures = %d, %v; want 50", k.Kind, n, err)
		}
	}
}

func TestPrune(t *testing.T) {
	th, c := newTest(t)
	old, fresh, locked := AccountKey("old"), AccountKey("fresh"), IPKey(netip.MustParseAddr("192.0.2.1"))
	th.IP.LockAfter = 1
	th.IP.Lockout = 2 * th.Account.Window
	if _, err := th.Attempt(old); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := th.Attempt(locked); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(th.Account.Window + time.Second)
	if _, err := th.Attempt(fresh); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(th.Dir, "README"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := th.Prune(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[Key]bool{old: false, fresh: true, locked: true} {
		_, err := os.Stat(filepath.Join(th.Dir, k.file()))
		if got := err == nil; got != want {
			t.Errorf("%s %s: file exists %v, want %v", k.Kind, k.Name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(th.Dir, "README")); err != nil {
		t.Errorf("Prune removed a file that is not its own: %v", err)
	}
	if v, _ := th.Attempt(locked); !v.Locked {
		t.Error("lockout lost by pruning")
	}
}

func TestDamagedFile(t *testing.T) {
	th, _ := newTest(t)
	k := AccountKey("ann")
	if _, err := th.Attempt(k); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(th.Dir, k.file()), []byte("garbage\x00\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := th.Attempt(k); err != nil || v.Locked {
		t.Fatalf("Attempt on a damaged file = %+v, %v; want a fresh count", v, err)
	}
	if n, _ := th.Failures(k); n != 1 {
		t.Errorf("failures = %d, want 1", n)
	}
}

func TestLoadPolicies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "throttle")
	text := "# tuning\nip.free 5\nip.delay 2s # first delay\naccount.lock-after 0\naccount.lockout 1h\nip.max-delay 1m\nip.window 30m\n\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	th := New(filepath.Join(dir, "run"))
	if err := th.LoadPolicies(path); err != nil {
		t.Fatal(err)
	}
	wantIP := DefaultIP
	wantIP.Free, wantIP.Delay, wantIP.MaxDelay, wantIP.Window = 5, 2*time.Second, time.Minute, 30*time.Minute
	wantAcct := DefaultAccount
	wantAcct.LockAfter, wantAcct.Lockout = 0, time.Hour
	if th.IP != wantIP || th.Account != wantAcct {
		t.Errorf("policies %+v %+v, want %+v %+v", th.IP, th.Account, wantIP, wantAcct)
	}
	for _, bad := range []string{"ip.free", "ip.free -1", "ip.delay 3", "host.free 1", "ip.colour red", "ip.free 1 2"} {
		if err := os.WriteFile(path, []byte(bad+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		th := New(dir)
		if err := th.LoadPolicies(path); err == nil {
			t.Errorf("LoadPolicies(%q) = nil", bad)
		} else if th.IP != DefaultIP {
			t.Errorf("a bad file changed the policy")
		}
	}
	if err := New(dir).LoadPolicies(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
