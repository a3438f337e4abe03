package sasl

import (
	"errors"
	"testing"

	"mailsrv/pkg/auth"
)

// FuzzScram feeds arbitrary client messages to the SCRAM server: it must
// never panic, never call finish more than once, and never succeed (the
// fuzzer cannot know the password).
func FuzzScram(f *testing.F) {
	const nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	f.Add("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=rOprNGfwEbeRWgbNEkqO"+nonce+",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVc=")
	f.Add("y,a=user,n=user,r=x,e=1", "c=eSxhPXVzZXIs,r=x"+nonce+",p=")
	f.Add("p=tls-unique,,n=user,r=x", "")
	f.Add("n,,n=a=2Cb=3D,r=!", "c=biws,r=!"+nonce+",x=1,p=AAAA")
	keys := pencilKeys(f)
	f.Fuzz(func(t *testing.T, first, final string) {
		fl := &fixedLookup{keys: keys}
		m := NewScramSHA256(fl.lookup).(*scram)
		m.nonce = func() string { return nonce }
		_, done, err := m.Next([]byte(first))
		if err == nil && !done {
			_, _, err = m.Next([]byte(final))
		}
		if err == nil {
			t.Fatalf("exchange succeeded for %q %q", first, final)
		}
		if len(fl.finished) > 1 || len(fl.finished) == 1 && fl.finished[0] {
			t.Fatalf("finish calls %v", fl.finished)
		}
		if len(fl.finished) == 1 && !errors.Is(err, auth.ErrMismatch) && !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("error %v after finish", err)
		}
	})
}

// FuzzPlain checks that ParsePlain never panics and returns fields that
// contain no NUL.
func FuzzPlain(f *testing.F) {
	f.Add([]byte("\x00user\x00pass"))
	f.Add([]byte("a\x00a\x00"))
	f.Add([]byte("\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		user, pass, err := ParsePlain(b)
		if err != nil {
			return
		}
		if user == "" || len(user)+len(pass) > len(b) {
			t.Fatalf("ParsePlain(%q) = %q, %q", b, user, pass)
		}
		for _, s := range []string{user, pass} {
			for i := 0; i < len(s); i++ {
				if s[i] == 0 {
					t.Fatalf("NUL in field %q", s)
				}
			}
		}
	})
}
