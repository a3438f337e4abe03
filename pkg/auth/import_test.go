package auth

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
)

// doveadmPW runs Dovecot's own hasher (Debian dovecot-core): `doveadm pw`.
// -O skips reading dovecot.conf, which a test machine need not have.
func doveadmPW(t *testing.T, scheme, password string) string {
	t.Helper()
	out, err := exec.Command("doveadm", "-O", "pw", "-s", scheme, "-p", password).Output()
	if err != nil {
		t.Fatalf("doveadm pw -s %s: %v", scheme, err)
	}
	h := strings.TrimSpace(string(out))
	if !strings.HasPrefix(h, "{"+scheme+"}") {
		t.Fatalf("doveadm pw -s %s = %q, want the {%s} prefix", scheme, h, scheme)
	}
	return h
}

// dovecotSchemes are the schemes of doveadm pw that we read.
var dovecotSchemes = []string{"SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "ARGON2ID", "ARGON2I",
	"SCRAM-SHA-256", "SSHA512", "SSHA256", "SHA512", "SHA256", "PLAIN", "CLEARTEXT",
	"PLAIN.B64", "PLAIN.HEX", "SSHA512.HEX", "SHA256.HEX", "SSHA256.B64"}

func TestVerifyDovecotSchemes(t *testing.T) {
	const pw = "Tr0ub4dor & 3 pässe"
	for _, scheme := range dovecotSchemes {
		t.Run(scheme, func(t *testing.T) {
			h := doveadmPW(t, scheme, pw)
			if got := Scheme(h); got != scheme {
				t.Errorf("Scheme(%q) = %q", h, got)
			}
			if err := VerifyAny(h, pw); err != nil {
				t.Errorf("VerifyAny(%q, right) = %v", h, err)
			}
			if err := VerifyAny(h, pw+" "); !errors.Is(err, ErrMismatch) {
				t.Errorf("VerifyAny(%q, wrong) = %v, want ErrMismatch", h, err)
			}
			if !NeedsUpgrade(h) {
				t.Errorf("NeedsUpgrade(%q) = false", h)
			}
		})
	}
	// A bare crypt string, as /etc/shadow or a {CRYPT} passdb holds it.
	h := strings.TrimPrefix(doveadmPW(t, "BLF-CRYPT", pw), "{BLF-CRYPT}")
	if !strings.HasPrefix(h, "$2y$") {
		t.Fatalf("doveadm BLF-CRYPT = %q, want $2y$", h)
	}
	if err := VerifyAny(h, pw); err != nil {
		t.Errorf("VerifyAny(bare %q) = %v", h, err)
	}
}

func TestVerifyAnyBad(t *testing.T) {
	tests := []struct {
		name, hash string
		scheme     bool // want ErrUnknownScheme
	}{
		{name: "empty", hash: "", scheme: true},
		{name: "unknown scheme", hash: "{MD5-CRYPT}$1$abc$def", scheme: true},
		{name: "unterminated brace", hash: "{SHA512-CRYPT$6$abc$def", scheme: true},
		{name: "crypt of md5", hash: "{CRYPT}$1$abc$def", scheme: true},
		{name: "sha512 short sum", hash: "{SHA512-CRYPT}$6$salt$abc"},
		{name: "sha512 holds sha256", hash: "{SHA512-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{name: "sha512 bad rounds", hash: "{SHA512-CRYPT}$6$rounds=x$salt$" + strings.Repeat("a", 86)},
		{name: "sha512 long salt", hash: "$6$" + strings.Repeat("s", 17) + "$" + strings.Repeat("a", 86)},
		{name: "bcrypt garbage", hash: "{BLF-CRYPT}$2y$05$short"},
		{name: "bcrypt not bcrypt", hash: "{BLF-CRYPT}$6$x$y"},
		{name: "argon2i holds argon2id", hash: "{ARGON2I}$argon2id$v=19$m=65536,t=3,p=1$MQWIJvy+e0mxJbAFzbrzDA$HeWRBVpiMwA7djmzAIujqL3FB1TGrHg3YglvZ6iyZbI"},
		{name: "argon2i bad params", hash: "{ARGON2I}$argon2i$v=19$m=0,t=3,p=1$MQWIJvy+e0mxJbAFzbrzDA$HeWRBVpiMwA7djmzAIujqL3FB1TGrHg3YglvZ6iyZbI"},
		{name: "scram fields", hash: "{SCRAM-SHA-256}4096,c2FsdA=="},
		{name: "ssha512 short", hash: "{SSHA512}c2FsdA=="},
		{name: "sha256 not base64", hash: "{SHA256}!!!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyAny(tc.hash, "pencil")
			switch {
			case err == nil:
				t.Fatalf("VerifyAny(%q) = nil", tc.hash)
			case errors.Is(err, ErrMismatch):
				t.Fatalf("VerifyAny(%q) = ErrMismatch, want an error about the hash", tc.hash)
			case tc.scheme != errors.Is(err, ErrUnknownScheme):
				t.Fatalf("VerifyAny(%q) = %v, want ErrUnknownScheme: %v", tc.hash, err, tc.scheme)
			}
		})
	}
}

func TestNeedsUpgrade(t *testing.T) {
	ours, err := Hash("pencil pencil pencil")
	if err != nil {
		t.Fatal(err)
	}
	const salt, key = "MQWIJvy+e0mxJbAFzbrzDA", "HeWRBVpiMwA7djmzAIujqL3FB1TGrHg3YglvZ6iyZbI"
	tests := []struct {
		hash string
		want bool
	}{
		{ours, false},
		{"{ARGON2ID}" + ours, true},
		{"$argon2id$v=19$m=65536,t=3,p=1$" + salt + "$" + key, false}, // Dovecot's, bare: as strong
		{"$argon2id$v=19$m=32768,t=3,p=2$" + salt + "$" + key, true},  // less memory
		{"$argon2id$v=19$m=65536,t=2,p=2$" + salt + "$" + key, true},  // fewer passes
		{"$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$" + key, true},        // short salt
		{"$argon2i$v=19$m=65536,t=3,p=2$" + salt + "$" + key, true},
		{"$6$salt$x", true},
		{"{PLAIN}pencil", true},
	}
	for _, tc := range tests {
		if got := NeedsUpgrade(tc.hash); got != tc.want {
			t.Errorf("NeedsUpgrade(%q) = %v, want %v", tc.hash, got, tc.want)
		}
	}
}

// testRoot makes a root whose etc/users holds lines.
func testRoot(t *testing.T, lines ...string) *config.Config {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, config.FileUsers), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Open(root)
}

// fakeClock is a clock that moves only when told to, or when the
// Authenticator sleeps.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func newThrottle(t *testing.T, c *fakeClock) *throttle.Throttle {
	th := throttle.New(filepath.Join(t.TempDir(), "throttle"))
	th.Now = c.Now
	return th
}

// TestDovecotImport is the migration: a passwd-file's hashes made by
// doveadm pw log in through Authenticate, are rewritten as argon2id with
// SCRAM keys (other attributes kept), and still log in afterwards; a
// wrong password fails before and after and rewrites nothing.
func TestDovecotImport(t *testing.T) {
	// etc/users has no room for white space or ':' in {PLAIN}: such a
	// password goes in as {PLAIN.B64}.
	const pw = "migrate: me please 42"
	schemes := []string{"SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID", "SCRAM-SHA-256", "PLAIN.B64"}
	var lines []string
	for i, s := range schemes {
		lines = append(lines, "u"+string(rune('a'+i))+"@example.org:"+doveadmPW(t, s, pw)+":quota=1G")
	}
	cfg := testRoot(t, lines...)
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	th := newThrottle(t, clock)
	for i, s := range schemes {
		user := "u" + string(rune('a'+i)) + "@example.org"
		t.Run(s, func(t *testing.T) {
			req := Request{Username: user, Password: pw + "!", Mech: "PLAIN", Service: "test"}
			if _, err := (&Authenticator{Config: cfg, Throttle: th}).Authenticate(req); !errors.Is(err, ErrMismatch) {
				t.Fatalf("wrong password: %v, want ErrMismatch", err)
			}
			before, _, _ := cfg.LookupUser(user)
			if Scheme(before.Hash) != s {
				t.Fatalf("a failed login changed the hash to %q", before.Hash)
			}
			req.Password = pw
			u, err := (&Authenticator{Config: cfg, Throttle: th}).Authenticate(req)
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			after, _, err := cfg.LookupUser(user)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(after.Hash, "$argon2id$v=19$m=65536,t=3,p=2$") || NeedsUpgrade(after.Hash) {
				t.Errorf("after login the hash is %q, want our argon2id", after.Hash)
			}
			if after.Attrs["quota"] != "1G" {
				t.Errorf("attributes after upgrade = %v, want quota=1G kept", after.Attrs)
			}
			if k, ok := UserScramKeys(after); !ok || k.Verify(pw) != nil {
				t.Errorf("after upgrade the SCRAM keys are missing or wrong: %v", after.Attrs)
			}
			if u.Hash != after.Hash {
				t.Errorf("Authenticate returned hash %q, file has %q", u.Hash, after.Hash)
			}
			if _, err := (&Authenticator{Config: cfg, Throttle: th}).Authenticate(req); err != nil {
				t.Errorf("second login after upgrade: %v", err)
			}
			req.Password = pw + "!"
			if _, err := (&Authenticator{Config: cfg, Throttle: th}).Authenticate(req); !errors.Is(err, ErrMismatch) {
				t.Errorf("wrong password after upgrade: %v, want ErrMismatch", err)
			}
			again, _, _ := cfg.LookupUser(user)
			if again.Hash != after.Hash {
				t.Errorf("a login without need rewrote the hash")
			}
		})
	}
}
