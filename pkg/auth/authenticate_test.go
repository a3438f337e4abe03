package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// cheapHash is an argon2id hash with tiny parameters, so that a test can
// try many passwords without 64 MiB each; NeedsUpgrade is true for it.
func cheapHash(password string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
}

// lockedBuffer is a log destination for parallel goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBruteForce is the scenario: 50 wrong passwords from one
// address over 5 parallel connections. Later attempts are delayed, then
// refused; the right password during the lockout gets the same refusal as
// a wrong one; the lockout ends by itself (a fake clock moves past it);
// every attempt is logged, never with the password.
func TestBruteForce(t *testing.T) {
	const right = "the right one 1234"
	cfg := testRoot(t, "ann@example.org:"+cheapHash(right))
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	th := newThrottle(t, clock)
	var logs lockedBuffer
	var mu sync.Mutex
	var delays []time.Duration
	a := &Authenticator{Config: cfg, Throttle: th,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			delays = append(delays, d)
			mu.Unlock()
			return nil
		}}
	ip := netip.MustParseAddr("203.0.113.5")
	results := map[string]int{}
	var wg sync.WaitGroup
	for conn := range 5 {
		wg.Go(func() {
			for i := range 10 {
				_, err := a.Authenticate(Request{Username: "ann@example.org", Password: fmt.Sprintf("guess-%d-%d", conn, i),
					RemoteIP: ip, Mech: "PLAIN", Service: "test"})
				mu.Lock()
				switch {
				case errors.Is(err, ErrMismatch):
					results["mismatch"]++
				case errors.Is(err, ErrThrottled):
					results["throttled"]++
				default:
					results[fmt.Sprint(err)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	lock := th.IP.LockAfter
	if results["mismatch"] != lock || results["throttled"] != 50-lock || len(results) != 2 {
		t.Fatalf("results %v, want %d mismatches and %d refusals", results, lock, 50-lock)
	}
	if len(delays) != lock-th.IP.Free {
		t.Errorf("%d delayed attempts (%v), want %d", len(delays), delays, lock-th.IP.Free)
	}
	req := Request{Username: "ann@example.org", Password: right, RemoteIP: ip, Mech: "PLAIN", Service: "test"}
	_, errRight := a.Authenticate(req)
	req.Password = "wrong"
	_, errWrong := a.Authenticate(req)
	if !errors.Is(errRight, ErrThrottled) || errRight != errWrong {
		t.Fatalf("during the lockout: right password %v, wrong %v; want the same ErrThrottled", errRight, errWrong)
	}
	// Another address may still try the account (its own count is at 10
	// of 20), but waits.
	other := req
	other.RemoteIP, other.Password = netip.MustParseAddr("198.51.100.1"), right
	delays = nil
	if _, err := a.Authenticate(other); err != nil {
		t.Fatalf("right password from another address: %v", err)
	}
	if len(delays) != 1 || delays[0] < time.Second {
		t.Errorf("delays %v: the account's failures should delay another address too", delays)
	}
	clock.now = clock.now.Add(th.IP.Lockout + time.Second)
	req.Password = right
	if _, err := a.Authenticate(req); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	text := logs.String()
	if n := strings.Count(text, "msg=auth "); n != 54 {
		t.Errorf("%d auth log lines, want 54 (one per attempt)", n)
	}
	if strings.Contains(text, "guess-") || strings.Contains(text, right) {
		t.Errorf("the log contains a password:\n%s", text)
	}
	for _, want := range []string{"result=throttled", "result=fail", "result=ok", "ip=203.0.113.5", "user=ann@example.org", "mech=PLAIN", "locked=ip", "delay="} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestAuthenticateErrors(t *testing.T) {
	const pw = "right password here"
	cfg := testRoot(t, "ann@example.org:"+cheapHash(pw), "bad@example.org:{MD5-CRYPT}$1$x$y")
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	a := &Authenticator{Config: cfg, Throttle: newThrottle(t, clock), Logger: slog.New(slog.DiscardHandler)}
	if _, err := a.Authenticate(Request{Username: "bad@example.org", Password: pw}); err == nil || errors.Is(err, ErrMismatch) {
		t.Errorf("unknown scheme: %v, want a server error", err)
	}
	if _, err := a.Authenticate(Request{Username: "not an address", Password: pw}); !errors.Is(err, ErrMismatch) {
		t.Errorf("bad user name: %v, want ErrMismatch", err)
	}
	// The client goes away during a delay.
	for range 3 {
		_, _ = a.Authenticate(Request{Username: "ann@example.org", Password: "x"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Authenticate(Request{Username: "ann@example.org", Password: pw, Ctx: ctx}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during the delay: %v", err)
	}
	// etc/users that does not parse is the server's fault.
	if err := os.WriteFile(cfg.Path("etc/users"), []byte("no colon here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Authenticator{Config: cfg}).Authenticate(Request{Username: "ann@example.org", Password: pw}); err == nil || errors.Is(err, ErrMismatch) {
		t.Errorf("broken etc/users: %v, want a server error", err)
	}
}

// TestUpgradeRace: the administrator changes the hash between the check
// and the upgrade; his change wins.
func TestUpgradeRace(t *testing.T) {
	cfg := testRoot(t, "ann@example.org:{PLAIN}first-password:quota=1G")
	u, err := Login(cfg, "ann@example.org", "first-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path("etc/users"), []byte("ann@example.org:{PLAIN}second-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Upgrade(cfg, u, "first-password"); err != nil {
		t.Fatal(err)
	}
	now, _, _ := cfg.LookupUser("ann@example.org")
	if now.Hash != "{PLAIN}second-password" {
		t.Errorf("upgrade overwrote the administrator's change: %q", now.Hash)
	}
}
