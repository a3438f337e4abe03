package sasl

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"mailsrv/pkg/auth"
)

// pencilKeys are the keys of RFC 7677 section 3's example: password
// "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
func pencilKeys(t testing.TB) auth.ScramKeys {
	salt, err := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	if err != nil {
		t.Fatal(err)
	}
	k, err := auth.NewScramKeys("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixedLookup serves the keys for "user" and records the outcome.
type fixedLookup struct {
	keys     auth.ScramKeys
	user     string
	finished []bool
}

func (f *fixedLookup) lookup(user string) (auth.ScramKeys, func(bool) error, error) {
	f.user = user
	return f.keys, func(ok bool) error {
		f.finished = append(f.finished, ok)
		if !ok {
			return auth.ErrMismatch
		}
		return nil
	}, nil
}

// TestScramRFC7677 replays the example exchange of RFC 7677 section 3 with
// its nonces: every server message must come out byte for byte.
func TestScramRFC7677(t *testing.T) {
	f := &fixedLookup{keys: pencilKeys(t)}
	m := NewScramSHA256(f.lookup).(*scram)
	m.nonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }
	steps := []struct{ client, server string }{
		{"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"},
		{"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
	}
	for i, s := range steps {
		ch, done, err := m.Next([]byte(s.client))
		if err != nil || done {
			t.Fatalf("step %d: Next = %q, %v, %v", i, ch, done, err)
		}
		if string(ch) != s.server {
			t.Fatalf("step %d: server sent %q, RFC 7677 has %q", i, ch, s.server)
		}
	}
	if ch, done, err := m.Next([]byte{}); err != nil || !done || len(ch) != 0 {
		t.Fatalf("after server-final: Next(empty) = %q, %v, %v; want done", ch, done, err)
	}
	if f.user != "user" || len(f.finished) != 1 || !f.finished[0] {
		t.Errorf("lookup user %q, outcomes %v; want user, [true]", f.user, f.finished)
	}
}

func TestScramWrongProof(t *testing.T) {
	f := &fixedLookup{keys: pencilKeys(t)}
	m := NewScramSHA256(f.lookup).(*scram)
	m.nonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }
	if _, _, err := m.Next([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")); err != nil {
		t.Fatal(err)
	}
	// The RFC's proof with its last byte changed.
	_, done, err := m.Next([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVc="))
	if !errors.Is(err, auth.ErrMismatch) || !done {
		t.Fatalf("wrong proof: %v, done %v; want ErrMismatch", err, done)
	}
	if len(f.finished) != 1 || f.finished[0] {
		t.Errorf("outcomes %v, want [false]", f.finished)
	}
}

func TestScramCancel(t *testing.T) {
	f := &fixedLookup{keys: pencilKeys(t)}
	m := NewScramSHA256(f.lookup)
	if _, _, err := m.Next([]byte("n,,n=user,r=abc")); err != nil {
		t.Fatal(err)
	}
	Cancel(m)
	Cancel(m)
	if len(f.finished) != 1 || f.finished[0] {
		t.Errorf("outcomes after cancel %v, want [false]", f.finished)
	}
	if _, _, err := m.Next([]byte("c=biws,r=x,p=AAAA")); !errors.Is(err, ErrUnexpected) {
		t.Errorf("Next after Cancel = %v", err)
	}
	Cancel(NewPlain(nil)) // nothing to do, no panic
}

func TestScramBadInput(t *testing.T) {
	const nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	const cfinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	tests := []struct {
		name          string
		first, final  string // final "" : the first message must fail
		want          error
		wantFinishedN int
	}{
		{name: "empty", first: "", want: ErrSyntax},
		{name: "no gs2", first: "n=user,r=abc", want: ErrSyntax},
		{name: "channel binding", first: "p=tls-unique,,n=user,r=abc", want: ErrSyntax},
		{name: "bad flag", first: "x,,n=user,r=abc", want: ErrSyntax},
		{name: "no nonce", first: "n,,n=user", want: ErrSyntax},
		{name: "order", first: "n,,r=abc,n=user", want: ErrSyntax},
		{name: "mandatory ext", first: "n,,n=user,r=abc,m=x", want: ErrSyntax},
		{name: "bad saslname", first: "n,,n=us=er,r=abc", want: ErrSyntax},
		{name: "empty nonce", first: "n,,n=user,r=", want: ErrSyntax},
		{name: "authzid other", first: "n,a=admin,n=user,r=abc", want: ErrAuthzid},
		{name: "authzid bad", first: "n,x=user,n=user,r=abc", want: ErrSyntax},
		{name: "too long", first: "n,,n=user,r=" + strings.Repeat("a", MaxResponse), want: ErrTooLong},
		{name: "final no proof", first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", final: "c=biws,r=x", want: ErrSyntax, wantFinishedN: 1},
		{name: "final wrong nonce", first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", final: strings.Replace(cfinal, "$k0", "$k1", 1), want: ErrSyntax, wantFinishedN: 1},
		{name: "final wrong cbind", first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", final: strings.Replace(cfinal, "biws", "eSws", 1), want: ErrSyntax, wantFinishedN: 1},
		{name: "final short proof", first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", final: "c=biws,r=rOprNGfwEbeRWgbNEkqO" + nonce + ",p=AAAA", want: ErrSyntax, wantFinishedN: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixedLookup{keys: pencilKeys(t)}
			m := NewScramSHA256(f.lookup).(*scram)
			m.nonce = func() string { return nonce }
			_, done, err := m.Next([]byte(tc.first))
			if tc.final != "" {
				if err != nil {
					t.Fatalf("client-first: %v", err)
				}
				_, done, err = m.Next([]byte(tc.final))
			}
			if !errors.Is(err, tc.want) || !done {
				t.Fatalf("got %v (done %v), want %v", err, done, tc.want)
			}
			if len(f.finished) != tc.wantFinishedN {
				t.Errorf("finish called %d times, want %d", len(f.finished), tc.wantFinishedN)
			}
			if _, _, err := m.Next([]byte("again")); !errors.Is(err, ErrUnexpected) {
				t.Errorf("Next after the end = %v, want ErrUnexpected", err)
			}
		})
	}
}

// pythonScramClient is an RFC 5802 client written from the RFC in Python
// with hashlib and hmac only, independent of our Go code. It reads
// server messages and writes client messages, one per line, and exits 0
// only if the server's signature is right.
const pythonScramClient = `
import base64, hashlib, hmac, sys
user, password, cnonce = sys.argv[1], sys.argv[2], "fyko+d2lbbFgONRv9qkxdawL"
bare = "n=" + user.replace("=", "=3D").replace(",", "=2C") + ",r=" + cnonce
print("n,," + bare, flush=True)
sfirst = sys.stdin.readline().strip()
attrs = dict(kv.split("=", 1) for kv in sfirst.split(","))
assert attrs["r"].startswith(cnonce)
salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
ckey = hmac.new(salted, b"Client Key", "sha256").digest()
stored = hashlib.sha256(ckey).digest()
without = "c=" + base64.b64encode(b"n,,").decode() + ",r=" + attrs["r"]
msg = (bare + "," + sfirst + "," + without).encode()
sig = hmac.new(stored, msg, "sha256").digest()
proof = bytes(a ^ b for a, b in zip(ckey, sig))
print(without + ",p=" + base64.b64encode(proof).decode(), flush=True)
sfinal = sys.stdin.readline().strip()
skey = hmac.new(salted, b"Server Key", "sha256").digest()
want = "v=" + base64.b64encode(hmac.new(skey, msg, "sha256").digest()).decode()
sys.exit(0 if sfinal == want else 3)
`

// runPythonScram drives m with the Python client and returns the error of
// the exchange and whether Python accepted the server's signature.
func runPythonScram(t *testing.T, m Mechanism, user, password string) (error, bool) {
	t.Helper()
	cmd := exec.Command("python3", "-c", pythonScramClient, user, password)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	var mechErr error
	for range 2 {
		line, rerr := r.ReadString('\n')
		if rerr != nil {
			mechErr = rerr
			break
		}
		ch, _, err := m.Next([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			mechErr = err
			break
		}
		if _, err := io.WriteString(stdin, string(ch)+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if mechErr == nil {
		if _, done, err := m.Next([]byte{}); err != nil || !done {
			mechErr = errors.Join(err, errors.New("not done"))
		}
	}
	_ = stdin.Close()
	werr := cmd.Wait()
	return mechErr, werr == nil
}

func TestScramPythonClient(t *testing.T) {
	salt := []byte("0123456789abcdef")
	keys, err := auth.NewScramKeys("correct horse, battery=staple", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixedLookup{keys: keys}
	err, pyOK := runPythonScram(t, NewScramSHA256(f.lookup), "we,ird=name@example.org", "correct horse, battery=staple")
	if err != nil || !pyOK {
		t.Fatalf("right password: server %v, client accepted server: %v", err, pyOK)
	}
	if f.user != "we,ird=name@example.org" {
		t.Errorf("user name decoded as %q", f.user)
	}
	f = &fixedLookup{keys: keys}
	err, _ = runPythonScram(t, NewScramSHA256(f.lookup), "user@example.org", "correct horse, battery=stable")
	if !errors.Is(err, auth.ErrMismatch) {
		t.Fatalf("wrong password: %v, want ErrMismatch", err)
	}
}
