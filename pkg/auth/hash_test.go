package auth

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("violet tram ledger ninety")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("Hash = %q, want an argon2id PHC string with our parameters", h)
	}
	if strings.ContainsAny(h, ": \t\n") {
		t.Errorf("Hash = %q: it must fit in a field of etc/users", h)
	}
	if err := Verify(h, "violet tram ledger ninety"); err != nil {
		t.Errorf("Verify(right password) = %v", err)
	}
	if err := Verify(h, "violet tram ledger ninetY"); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(wrong password) = %v, want ErrMismatch", err)
	}
	h2, err := Hash("violet tram ledger ninety")
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

// TestVerifyDovecot checks a hash made by another implementation:
// `doveadm pw -s ARGON2ID -p 'correct horse battery staple'` (Dovecot 2.3,
// libsodium), with Dovecot's {ARGON2ID} prefix removed.
func TestVerifyDovecot(t *testing.T) {
	const h = "$argon2id$v=19$m=65536,t=3,p=1$MQWIJvy+e0mxJbAFzbrzDA$HeWRBVpiMwA7djmzAIujqL3FB1TGrHg3YglvZ6iyZbI"
	if err := Verify(h, "correct horse battery staple"); err != nil {
		t.Errorf("Verify(dovecot hash, right password) = %v", err)
	}
	if err := Verify(h, "correct horse battery stable"); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(dovecot hash, wrong password) = %v, want ErrMismatch", err)
	}
}

func TestVerifyBadHash(t *testing.T) {
	const salt, key = "MQWIJvy+e0mxJbAFzbrzDA", "HeWRBVpiMwA7djmzAIujqL3FB1TGrHg3YglvZ6iyZbI"
	tests := []struct {
		name, hash string
		scheme     bool // want ErrUnknownScheme
	}{
		{name: "empty", hash: "", scheme: true},
		{name: "other scheme", hash: "{SHA512-CRYPT}$6$abc$def", scheme: true},
		{name: "argon2i", hash: "$argon2i$v=19$m=65536,t=3,p=1$" + salt + "$" + key, scheme: true},
		{name: "fields missing", hash: "$argon2id$v=19$m=65536,t=3,p=1$" + salt},
		{name: "extra field", hash: "$argon2id$v=19$m=65536,t=3,p=1$" + salt + "$" + key + "$x"},
		{name: "old version", hash: "$argon2id$v=16$m=65536,t=3,p=1$" + salt + "$" + key},
		{name: "bad params", hash: "$argon2id$v=19$m=x,t=3,p=1$" + salt + "$" + key},
		{name: "memory too big", hash: "$argon2id$v=19$m=8388608,t=3,p=1$" + salt + "$" + key},
		{name: "too many passes", hash: "$argon2id$v=19$m=65536,t=101,p=1$" + salt + "$" + key},
		{name: "zero passes", hash: "$argon2id$v=19$m=65536,t=0,p=1$" + salt + "$" + key},
		{name: "zero lanes", hash: "$argon2id$v=19$m=65536,t=3,p=0$" + salt + "$" + key},
		{name: "bad salt", hash: "$argon2id$v=19$m=65536,t=3,p=1$!!!$" + key},
		{name: "short key", hash: "$argon2id$v=19$m=65536,t=3,p=1$" + salt + "$AAAA"},
		{name: "bad key", hash: "$argon2id$v=19$m=65536,t=3,p=1$" + salt + "$***"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.hash, "correct horse battery staple")
			switch {
			case err == nil:
				t.Fatalf("Verify(%q) = nil", tc.hash)
			case errors.Is(err, ErrMismatch):
				t.Fatalf("Verify(%q) = ErrMismatch, want an error about the hash", tc.hash)
			case tc.scheme != errors.Is(err, ErrUnknownScheme):
				t.Fatalf("Verify(%q) = %v, want ErrUnknownScheme: %v", tc.hash, err, tc.scheme)
			}
		})
	}
}

// Simultaneous logins never run more argon2 computations at once than
// argonSlots allows (each costs 64 MiB).
func TestArgonConcurrencyBound(t *testing.T) {
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 4*cap(argonSlots); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			withArgonSlot(func() []byte {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				running.Add(-1)
				return nil
			})
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > int32(cap(argonSlots)) || p < 1 {
		t.Errorf("peak %d argon2 computations at once, bound %d", p, cap(argonSlots))
	}
}
