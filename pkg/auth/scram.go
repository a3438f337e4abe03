package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mailsrv/pkg/config"
)

// SCRAM-SHA-256 keys (RFC 5802 section 3, RFC 7677). A server that stores
// StoredKey and ServerKey can check a client's proof without ever seeing
// the password; they are kept in etc/users beside the argon2id hash as the
// attribute
//
//	scram-sha-256=ITER,SALT,STOREDKEY,SERVERKEY
//
// (salt and keys in standard base 64, the same layout as Dovecot's
// {SCRAM-SHA-256} scheme), written whenever a password is set (SetPassword)
// or a hash is upgraded at login. The keys are as strong as a PBKDF2 hash
// of ITER rounds: an attacker who reads etc/users can guess passwords
// against them faster than against argon2id, which is the price of SCRAM.

// AttrScramSHA256 is the etc/users attribute holding SCRAM-SHA-256 keys.
const AttrScramSHA256 = "scram-sha-256"

// ScramIterations is the PBKDF2 iteration count of new keys: RFC 7677
// section 4 asks for at least 4096.
const ScramIterations = 4096

// ScramKeys are one user's SCRAM-SHA-256 credentials.
type ScramKeys struct {
	Iter      int
	Salt      []byte
	StoredKey []byte // H(ClientKey)
	ServerKey []byte // HMAC(SaltedPassword, "Server Key")
}

// NewScramKeys derives the keys of password with salt and iter
// (RFC 5802 section 3: SaltedPassword := Hi(Normalize(password), salt, i)).
// The password is used as given: we do not apply SASLprep, which changes
// only passwords with non-ASCII or unusual space characters.
func NewScramKeys(password string, salt []byte, iter int) (ScramKeys, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return ScramKeys{}, fmt.Errorf("scram keys: %w", err)
	}
	clientKey := scramHMAC(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return ScramKeys{
		Iter:      iter,
		Salt:      salt,
		StoredKey: stored[:],
		ServerKey: scramHMAC(salted, "Server Key"),
	}, nil
}

func scramHMAC(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// String formats the keys as the attribute value ITER,SALT,STOREDKEY,SERVERKEY.
func (k ScramKeys) String() string {
	e := base64.StdEncoding.EncodeToString
	return strconv.Itoa(k.Iter) + "," + e(k.Salt) + "," + e(k.StoredKey) + "," + e(k.ServerKey)
}

// ParseScramKeys reads ITER,SALT,STOREDKEY,SERVERKEY.
func ParseScramKeys(s string) (ScramKeys, error) {
	f := strings.Split(s, ",")
	if len(f) != 4 {
		return ScramKeys{}, errors.New("scram keys: want ITER,SALT,STOREDKEY,SERVERKEY")
	}
	var k ScramKeys
	var err error
	if k.Iter, err = strconv.Atoi(f[0]); err != nil || k.Iter < 1 || k.Iter > 10_000_000 {
		return ScramKeys{}, fmt.Errorf("scram keys: iteration count %q", f[0])
	}
	d := base64.StdEncoding.DecodeString
	if k.Salt, err = d(f[1]); err != nil || len(k.Salt) == 0 {
		return ScramKeys{}, errors.New("scram keys: bad salt")
	}
	if k.StoredKey, err = d(f[2]); err != nil || len(k.StoredKey) != sha256.Size {
		return ScramKeys{}, errors.New("scram keys: bad StoredKey")
	}
	if k.ServerKey, err = d(f[3]); err != nil || len(k.ServerKey) != sha256.Size {
		return ScramKeys{}, errors.New("scram keys: bad ServerKey")
	}
	return k, nil
}

// Verify checks a password against the keys, for {SCRAM-SHA-256} hashes
// imported from Dovecot.
func (k ScramKeys) Verify(password string) error {
	other, err := NewScramKeys(password, k.Salt, k.Iter)
	if err != nil {
		return err
	}
	return compareEqual(other.StoredKey, k.StoredKey)
}

// UserScramKeys returns the SCRAM-SHA-256 keys of a user: the
// scram-sha-256 attribute, or a {SCRAM-SHA-256} hash imported from
// Dovecot. ok is false if the user has none (SCRAM then fails for them:
// they must log in once with PLAIN or LOGIN, which adds the keys).
func UserScramKeys(u config.User) (ScramKeys, bool) {
	if v, ok := u.Attrs[AttrScramSHA256]; ok {
		k, err := ParseScramKeys(v)
		return k, err == nil
	}
	if Scheme(u.Hash) == "SCRAM-SHA-256" {
		k, err := ParseScramKeys(u.Hash[len("{SCRAM-SHA-256}"):])
		return k, err == nil
	}
	return ScramKeys{}, false
}

// SetPassword makes what etc/users stores for a new password: the
// argon2id hash, and attributes to set beside it (the SCRAM-SHA-256 keys).
// Callers replace the user's hash and merge attrs into the user's
// attributes. The password should have passed CheckStrength.
func SetPassword(password string) (hash string, attrs map[string]string, err error) {
	hash, err = Hash(password)
	if err != nil {
		return "", nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", nil, err
	}
	keys, err := NewScramKeys(password, salt, ScramIterations)
	if err != nil {
		return "", nil, err
	}
	return hash, map[string]string{AttrScramSHA256: keys.String()}, nil
}

// scramKeysMatch reports whether keys were derived from password; used to
// decide whether stored keys must be rewritten.
func scramKeysMatch(k ScramKeys, password string) bool {
	other, err := NewScramKeys(password, k.Salt, k.Iter)
	return err == nil && subtle.ConstantTimeCompare(other.StoredKey, k.StoredKey) == 1 &&
		subtle.ConstantTimeCompare(other.ServerKey, k.ServerKey) == 1
}
