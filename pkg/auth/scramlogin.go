package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
)

// ScramLogin is a SCRAM-SHA-256 login in progress (the exchange itself is
// in pkg/sasl): the attempt has been counted and its delay waited out, and
// Keys are the user's stored keys, or made-up ones for an unknown user or
// one without keys, so that the exchange runs to its end either way and
// does not tell which users exist (RFC 5802 section 9). Call Finish once.
type ScramLogin struct {
	Keys ScramKeys

	a     *Authenticator
	req   Request
	keys  []throttle.Key
	delay time.Duration
	user  config.User
	known bool
	done  bool
}

// StartScram begins a SCRAM-SHA-256 login of req.Username (req.Password is
// unused): throttle check and delay as in Authenticate, then the look-up
// of the keys. It fails with ErrThrottled during a lockout, before the
// server reveals a salt.
func (a *Authenticator) StartScram(req Request) (*ScramLogin, error) {
	ctx := req.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	keys, delay, err := a.begin(ctx, req)
	if err != nil {
		return nil, err
	}
	l := &ScramLogin{a: a, req: req, keys: keys, delay: delay}
	if addr, perr := address.Parse(req.Username); perr == nil {
		u, found, err := a.Config.LookupUser(addr.Key())
		if err != nil {
			return nil, a.finish(req, keys, delay, err)
		}
		if found {
			l.user = u
			l.Keys, l.known = UserScramKeys(u)
		}
	}
	if !l.known {
		l.Keys = fakeScramKeys(req.Username)
	}
	return l, nil
}

// Finish records the outcome: proofOK says whether the client's proof
// matched Keys. It returns the user, or ErrMismatch, and logs the attempt.
func (l *ScramLogin) Finish(proofOK bool) (config.User, error) {
	if l.done {
		return config.User{}, errors.New("auth: scram login finished twice")
	}
	l.done = true
	var err error
	if !proofOK || !l.known {
		err = ErrMismatch
	}
	if err := l.a.finish(l.req, l.keys, l.delay, err); err != nil {
		return config.User{}, err
	}
	return l.user, nil
}

// fakeSecret keys the made-up salts of unknown users. It lives as long as
// the process, so one process gives an unknown name the same salt every
// time; separate processes (one per connection under tcpserver) give
// different ones, which a patient attacker can notice.
var fakeSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails on Linux; zeros would still work
	return b
})

func fakeScramKeys(username string) ScramKeys {
	h := hmac.New(sha256.New, fakeSecret())
	h.Write([]byte(username))
	sum := h.Sum(nil)
	stored := make([]byte, sha256.Size)
	server := make([]byte, sha256.Size)
	_, _ = rand.Read(stored)
	_, _ = rand.Read(server)
	return ScramKeys{Iter: ScramIterations, Salt: sum[:16], StoredKey: stored, ServerKey: server}
}
