// Package auth owns passwords: hashing them (argon2id, RFC 9106), checking
// a password against a stored hash, and refusing weak ones. The daemons
// (smtpd, imapd, pop3d) and mailctl share it.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for new hashes: the second recommended option of
// RFC 9106 section 4 (64 MiB, 3 passes), 2 lanes for 2-core machines.
// Stored hashes carry their own parameters, so these can grow.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	argonSaltLen = 16
)

// ErrMismatch is returned by Verify for a wrong password.
var ErrMismatch = errors.New("password does not match")

// ErrUnknownScheme is returned by Verify for a hash it cannot read.
var ErrUnknownScheme = errors.New("unknown password hash scheme")

var b64 = base64.RawStdEncoding

// Hash returns an argon2id hash of password in the PHC string format:
// $argon2id$v=19$m=65536,t=3,p=2$SALT$KEY.
func Hash(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argonID([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks password against hash. It returns nil on a match,
// ErrMismatch on a wrong password, and another error for a hash it cannot
// read.
func Verify(hash, password string) error {
	if !strings.HasPrefix(hash, "$argon2id$") {
		return ErrUnknownScheme
	}
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return fmt.Errorf("argon2id hash: %d fields", len(parts))
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return fmt.Errorf("argon2id hash: version %q", parts[2])
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return fmt.Errorf("argon2id hash: parameters %q", parts[3])
	}
	if m > 4*1024*1024 || t > 100 || p == 0 || t == 0 {
		return fmt.Errorf("argon2id hash: parameters out of range")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("argon2id hash: salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return fmt.Errorf("argon2id hash: key")
	}
	got := argonID([]byte(password), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
