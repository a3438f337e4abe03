package auth

import (
	"errors"
	"fmt"
	"sync"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
)

// dummyHash is checked against for users that do not exist, so that a
// failed login costs the same time whether or not the user is known.
var dummyHash = sync.OnceValue(func() string {
	h, err := Hash("no user has this password")
	if err != nil {
		// Hash fails only when the system has no randomness; a constant
		// hash in the same format keeps the timing.
		return "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0c2FsdA$" +
			"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	}
	return h
})

// Login checks a user name (a full address) and password against etc/users,
// the shared login of the daemons (smtpd AUTH, imapd, pop3d). A wrong
// password, an unknown user and an unparsable name all give ErrMismatch,
// after the same work as a real check, so that timing does not reveal which
// users exist. Other errors (a control file that cannot be read, a hash in
// an unknown scheme) are the server's fault and may pass.
func Login(cfg *config.Config, username, password string) (config.User, error) {
	addr, perr := address.Parse(username)
	var user config.User
	found := false
	if perr == nil {
		var err error
		user, found, err = cfg.LookupUser(addr.Key())
		if err != nil {
			return config.User{}, err
		}
	}
	if !found {
		_ = Verify(dummyHash(), password)
		return config.User{}, ErrMismatch
	}
	// VerifyAny: hashes imported from Dovecot log in too (and are upgraded
	// by the Authenticator, which calls this).
	if err := VerifyAny(user.Hash, password); err != nil {
		if errors.Is(err, ErrMismatch) {
			return config.User{}, ErrMismatch
		}
		return config.User{}, fmt.Errorf("hash of %s: %w", user.Addr.Key(), err)
	}
	return user, nil
}
