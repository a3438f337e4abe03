package sasl

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
)

const testPassword = "violet tram ledger ninety"

// newAuth makes a root with one user, ann@example.org, whose password was
// set by auth.SetPassword (argon2id and SCRAM keys), and one, old@, with
// only an argon2id hash.
func newAuth(t *testing.T) *auth.Authenticator {
	t.Helper()
	root := t.TempDir()
	hash, attrs, err := auth.SetPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	ann := config.User{Addr: address.Address{Local: "ann", Domain: "example.org"}, Hash: hash, Attrs: attrs}
	oldHash, err := auth.Hash(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	old := config.User{Addr: address.Address{Local: "old", Domain: "example.org"}, Hash: oldHash}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, config.FileUsers), []byte(ann.Line()+"\n"+old.Line()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	th := throttle.New(filepath.Join(root, throttle.Dir))
	return &auth.Authenticator{Config: config.Open(root), Throttle: th,
		Sleep: func(context.Context, time.Duration) error { return nil }}
}

var (
	loopback = netip.MustParseAddr("127.0.0.1")
	remote   = netip.MustParseAddr("192.0.2.7")
)

func TestMechanisms(t *testing.T) {
	a := newAuth(t)
	tests := []struct {
		name     string
		tls      bool
		ip       netip.Addr
		insecure bool
		want     []string
	}{
		{"remote no tls", false, remote, false, []string{ScramSHA256}},
		{"remote tls", true, remote, false, []string{ScramSHA256, Plain, Login}},
		{"loopback", false, loopback, false, []string{ScramSHA256, Plain, Login}},
		{"v6 loopback", false, netip.MustParseAddr("::1"), false, []string{ScramSHA256, Plain, Login}},
		{"mapped loopback", false, netip.MustParseAddr("::ffff:127.0.0.1"), false, []string{ScramSHA256, Plain, Login}},
		{"admin override", false, remote, true, []string{ScramSHA256, Plain, Login}},
		{"unknown peer", false, netip.Addr{}, false, []string{ScramSHA256}},
	}
	for _, tc := range tests {
		s := &Server{Auth: a, RemoteIP: tc.ip, TLS: tc.tls, Insecure: tc.insecure}
		if got := s.Mechanisms(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Mechanisms() = %v, want %v", tc.name, got, tc.want)
		}
		_, err := s.Start("plain")
		if allowed := slices.Contains(tc.want, Plain); allowed != (err == nil) || !allowed && !errors.Is(err, ErrEncryptionRequired) {
			t.Errorf("%s: Start(plain) = %v", tc.name, err)
		}
		if _, err := s.Password("USER", "ann@example.org", testPassword); !slices.Contains(tc.want, Plain) && !errors.Is(err, ErrEncryptionRequired) {
			t.Errorf("%s: Password = %v, want ErrEncryptionRequired", tc.name, err)
		}
	}
	s := &Server{Auth: &auth.Authenticator{Backend: otherBackend{}}, TLS: true}
	if got := s.Mechanisms(); !slices.Equal(got, []string{Plain, Login}) {
		t.Errorf("with an external backend: %v, want no SCRAM", got)
	}
	if _, err := s.Start("CRAM-MD5"); !errors.Is(err, ErrUnknownMechanism) {
		t.Errorf("Start(CRAM-MD5) = %v", err)
	}
}

type otherBackend struct{}

func (otherBackend) Check(context.Context, string, string) (config.User, error) {
	return config.User{}, auth.ErrMismatch
}

// exchange runs responses through m and returns the challenges and the
// final error.
func exchange(m Mechanism, responses ...[]byte) ([]string, error) {
	var chs []string
	for i, r := range responses {
		ch, done, err := m.Next(r)
		if err != nil {
			return chs, err
		}
		if done {
			if i != len(responses)-1 {
				return chs, errors.New("done early")
			}
			return chs, nil
		}
		chs = append(chs, string(ch))
	}
	return chs, errors.New("not done")
}

func TestPlainLogin(t *testing.T) {
	a := newAuth(t)
	pw := []byte(testPassword)
	tests := []struct {
		name      string
		mech      string
		responses [][]byte
		want      error
		chs       []string
	}{
		{"plain initial", Plain, [][]byte{[]byte("\x00ann@example.org\x00" + testPassword)}, nil, nil},
		{"plain authzid same", Plain, [][]byte{[]byte("ann@example.org\x00ann@example.org\x00" + testPassword)}, nil, nil},
		{"plain asked", Plain, [][]byte{nil, []byte("\x00ANN@example.org\x00" + testPassword)}, nil, []string{""}},
		{"plain wrong", Plain, [][]byte{[]byte("\x00ann@example.org\x00wrong")}, auth.ErrMismatch, nil},
		{"plain unknown user", Plain, [][]byte{[]byte("\x00bob@example.org\x00" + testPassword)}, auth.ErrMismatch, nil},
		{"plain authzid other", Plain, [][]byte{[]byte("old@example.org\x00ann@example.org\x00" + testPassword)}, ErrAuthzid, nil},
		{"plain two fields", Plain, [][]byte{[]byte("ann@example.org\x00" + testPassword)}, ErrSyntax, nil},
		{"plain empty", Plain, [][]byte{{}}, ErrSyntax, nil},
		{"plain too long", Plain, [][]byte{[]byte("\x00ann@example.org\x00" + strings.Repeat("x", MaxResponse))}, ErrTooLong, nil},
		{"login", Login, [][]byte{nil, []byte("ann@example.org"), pw}, nil, []string{"Username:", "Password:"}},
		{"login initial", Login, [][]byte{[]byte("ann@example.org"), pw}, nil, []string{"Password:"}},
		{"login wrong", Login, [][]byte{nil, []byte("ann@example.org"), []byte("nope")}, auth.ErrMismatch, []string{"Username:", "Password:"}},
		{"login empty user", Login, [][]byte{nil, {}}, ErrSyntax, []string{"Username:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Auth: a, RemoteIP: loopback, Service: "test"}
			m, err := s.Start(tc.mech)
			if err != nil {
				t.Fatal(err)
			}
			chs, err := exchange(m, tc.responses...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("exchange = %v, want %v", err, tc.want)
			}
			if !slices.Equal(chs, tc.chs) && !(len(chs) == 0 && len(tc.chs) == 0) {
				t.Errorf("challenges %q, want %q", chs, tc.chs)
			}
			u, ok := s.User()
			if ok != (tc.want == nil) || ok && u.Addr.Key() != "ann@example.org" {
				t.Errorf("User() = %v, %v", u.Addr, ok)
			}
		})
	}
}

// TestServerScram logs in with SCRAM-SHA-256 through the Python client:
// ann (keys set with her password) succeeds; old (no keys yet) fails
// until she logs in once with PLAIN, which adds her keys.
func TestServerScram(t *testing.T) {
	a := newAuth(t)
	s := &Server{Auth: a, RemoteIP: remote, Service: "test"}
	m, err := s.Start(ScramSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err, pyOK := runPythonScram(t, m, "ann@example.org", testPassword); err != nil || !pyOK {
		t.Fatalf("ann: %v, client accepted server: %v", err, pyOK)
	}
	if u, ok := s.User(); !ok || u.Addr.Key() != "ann@example.org" {
		t.Errorf("User() = %v, %v", u.Addr, ok)
	}
	s = &Server{Auth: a, RemoteIP: remote, Service: "test"}
	m, _ = s.Start(ScramSHA256)
	if err, _ := runPythonScram(t, m, "ann@example.org", "wrong"); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("ann, wrong password: %v", err)
	}
	m, _ = s.Start(ScramSHA256)
	if err, _ := runPythonScram(t, m, "nobody@example.org", testPassword); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("unknown user: %v", err)
	}
	m, _ = s.Start(ScramSHA256)
	if err, _ := runPythonScram(t, m, "old@example.org", testPassword); !errors.Is(err, auth.ErrMismatch) {
		t.Errorf("old before PLAIN: %v", err)
	}
	s = &Server{Auth: a, RemoteIP: remote, TLS: true, Service: "test"}
	m, _ = s.Start(Plain)
	if _, err := exchange(m, []byte("\x00old@example.org\x00"+testPassword)); err != nil {
		t.Fatalf("old with PLAIN: %v", err)
	}
	m, _ = s.Start(ScramSHA256)
	if err, pyOK := runPythonScram(t, m, "old@example.org", testPassword); err != nil || !pyOK {
		t.Errorf("old after PLAIN: %v, %v", err, pyOK)
	}
}

// TestServerThrottled: during a lockout every mechanism refuses with
// auth.ErrThrottled, the right password included, and SCRAM before it
// reveals a salt.
func TestServerThrottled(t *testing.T) {
	a := newAuth(t)
	a.Throttle.IP.LockAfter = 3
	s := &Server{Auth: a, RemoteIP: loopback, Service: "test"}
	for range 3 {
		m, _ := s.Start(Plain)
		if _, err := exchange(m, []byte("\x00ann@example.org\x00wrong")); !errors.Is(err, auth.ErrMismatch) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	m, _ := s.Start(Plain)
	if _, err := exchange(m, []byte("\x00ann@example.org\x00"+testPassword)); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("right password in lockout, PLAIN: %v, want ErrThrottled", err)
	}
	m, _ = s.Start(ScramSHA256)
	ch, _, err := m.Next([]byte("n,,n=ann@example.org,r=abcdef"))
	if !errors.Is(err, auth.ErrThrottled) || len(ch) != 0 {
		t.Errorf("SCRAM in lockout: %q, %v, want ErrThrottled and no salt", ch, err)
	}
	if _, ok := s.User(); ok {
		t.Error("a user is logged in")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want Outcome
	}{
		{auth.ErrMismatch, Failed},
		{ErrAuthzid, Failed},
		{auth.ErrThrottled, Temporary},
		{errors.New("etc/users: permission denied"), Temporary},
		{ErrSyntax, Malformed},
		{ErrTooLong, Malformed},
		{ErrUnexpected, Malformed},
		{ErrUnknownMechanism, Unsupported},
		{ErrEncryptionRequired, NeedsTLS},
		{context.Canceled, Gone},
	}
	for _, tc := range tests {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
