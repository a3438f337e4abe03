package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hashes imported from elsewhere. etc/users may hold, besides our own
// "$argon2id$..." strings, the hashes of a Dovecot passwd-file with their
// "{SCHEME}" prefix (https://doc.dovecot.org/configuration_manual/authentication/password_schemes/),
// or a bare crypt(3) string. VerifyAny checks them all; NeedsUpgrade tells
// the login path to rewrite them as argon2id once the password is known.
//
// Supported: {ARGON2ID} (the PHC string we use ourselves), {ARGON2I},
// {SHA512-CRYPT} and {SHA256-CRYPT} ($6$, $5$), {BLF-CRYPT} ($2y$, $2b$,
// $2a$), {CRYPT} holding one of those, {SCRAM-SHA-256}
// (ITER,SALT,STOREDKEY,SERVERKEY), {SSHA512}, {SSHA256}, {SHA512},
// {SHA256} (base 64), {PLAIN}/{CLEARTEXT}, and the .B64 and .HEX
// encodings of the last six ({PLAIN.B64}, {SHA256.HEX}, ...).

// Scheme returns the upper-case scheme of a stored hash: the {SCHEME}
// prefix, or for a bare string ARGON2ID, ARGON2I, SHA512-CRYPT,
// SHA256-CRYPT or BLF-CRYPT; "" if it is none of these.
func Scheme(stored string) string {
	if strings.HasPrefix(stored, "{") {
		if end := strings.IndexByte(stored, '}'); end > 0 {
			return strings.ToUpper(stored[1:end])
		}
		return ""
	}
	return cryptScheme(stored)
}

// cryptScheme names the scheme of a bare crypt(3) or PHC string.
func cryptScheme(s string) string {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return "ARGON2ID"
	case strings.HasPrefix(s, "$argon2i$"):
		return "ARGON2I"
	case strings.HasPrefix(s, "$6$"):
		return "SHA512-CRYPT"
	case strings.HasPrefix(s, "$5$"):
		return "SHA256-CRYPT"
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return "BLF-CRYPT"
	}
	return ""
}

// VerifyAny checks password against a stored hash in any supported scheme.
// Like Verify it returns nil, ErrMismatch, or another error for a hash it
// cannot read (ErrUnknownScheme for an unsupported scheme).
func VerifyAny(stored, password string) error {
	scheme, body := Scheme(stored), stored
	if strings.HasPrefix(stored, "{") {
		body = stored[len(scheme)+2:]
	}
	if base, enc, ok := strings.Cut(scheme, "."); ok {
		return verifyEncoded(base, enc, body, password)
	}
	switch scheme {
	case "ARGON2ID":
		return Verify(body, password)
	case "ARGON2I":
		return verifyArgon2i(body, password)
	case "SHA512-CRYPT", "SHA256-CRYPT":
		if cryptScheme(body) != scheme {
			return fmt.Errorf("{%s} hash: bad format", scheme)
		}
		return verifySHACrypt(body, password)
	case "BLF-CRYPT":
		return verifyBcrypt(body, password)
	case "CRYPT":
		// Dovecot's {CRYPT} is libc crypt(3); we read its modern forms.
		switch cryptScheme(body) {
		case "SHA512-CRYPT", "SHA256-CRYPT":
			return verifySHACrypt(body, password)
		case "BLF-CRYPT":
			return verifyBcrypt(body, password)
		}
		return fmt.Errorf("{CRYPT} hash: only $6$, $5$ and $2y$ are supported: %w", ErrUnknownScheme)
	case "PLAIN", "CLEARTEXT":
		return compareEqual([]byte(body), []byte(password))
	case "SCRAM-SHA-256":
		keys, err := ParseScramKeys(body)
		if err != nil {
			return err
		}
		return keys.Verify(password)
	case "SSHA512", "SSHA256", "SHA512", "SHA256":
		raw, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return fmt.Errorf("{%s} hash: %w", scheme, err)
		}
		return verifySaltedSHA(scheme, raw, password)
	}
	return ErrUnknownScheme
}

// verifyEncoded handles Dovecot's encoding suffixes, {PLAIN.B64},
// {SHA256.HEX} and the like: the stored value is the scheme's raw bytes in
// base 64 or hex. {PLAIN.B64} is how a password with white space or ':'
// fits in etc/users.
func verifyEncoded(scheme, enc, body, password string) error {
	var raw []byte
	var err error
	switch enc {
	case "B64", "BASE64":
		raw, err = base64.StdEncoding.DecodeString(body)
	case "HEX":
		raw, err = hex.DecodeString(body)
	default:
		return fmt.Errorf("{%s.%s}: unknown encoding: %w", scheme, enc, ErrUnknownScheme)
	}
	if err != nil {
		return fmt.Errorf("{%s.%s} hash: %w", scheme, enc, err)
	}
	switch scheme {
	case "PLAIN", "CLEARTEXT":
		return compareEqual(raw, []byte(password))
	case "SSHA512", "SSHA256", "SHA512", "SHA256":
		return verifySaltedSHA(scheme, raw, password)
	}
	return fmt.Errorf("{%s.%s}: %w", scheme, enc, ErrUnknownScheme)
}

// compareEqual compares in time independent of where the first difference
// lies (the length may leak, as in every {PLAIN} check).
func compareEqual(a, b []byte) error {
	if subtle.ConstantTimeCompare(a, b) != 1 {
		return ErrMismatch
	}
	return nil
}

// verifyBcrypt checks a bcrypt string. $2y$ (PHP's and Dovecot's name for
// the corrected algorithm) is the same computation as $2b$.
func verifyBcrypt(s, password string) error {
	if cryptScheme(s) != "BLF-CRYPT" {
		return fmt.Errorf("bcrypt hash: bad format")
	}
	err := bcrypt.CompareHashAndPassword([]byte(s), []byte(password))
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return ErrMismatch
	}
	if err != nil {
		return fmt.Errorf("bcrypt hash: %w", err)
	}
	return nil
}

// verifySaltedSHA checks Dovecot's {SSHA512}/{SSHA256} (base64 of
// digest || salt) and unsalted {SHA512}/{SHA256} (base64 of digest).
func verifySaltedSHA(scheme string, raw []byte, password string) error {
	size, sum := sha512.Size, func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }
	if strings.HasSuffix(scheme, "256") {
		size, sum = sha256.Size, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	}
	salted := strings.HasPrefix(scheme, "S")
	if len(raw) < size || !salted && len(raw) != size {
		return fmt.Errorf("{%s} hash: bad length", scheme)
	}
	return compareEqual(sum(append([]byte(password), raw[size:]...)), raw[:size])
}

// argon2Params are the fields of an argon2 PHC string.
type argon2Params struct {
	variant   string // "argon2id" or "argon2i"
	m, t      uint32
	p         uint8
	salt, key []byte
}

// parseArgon2 reads "$argon2id$v=19$m=M,t=T,p=P$SALT$KEY" or the argon2i
// form, with the same limits as Verify.
func parseArgon2(s string) (argon2Params, error) {
	var a argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || (parts[1] != "argon2id" && parts[1] != "argon2i") {
		return a, fmt.Errorf("argon2 hash: bad format")
	}
	a.variant = parts[1]
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return a, fmt.Errorf("argon2 hash: version %q", parts[2])
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return a, fmt.Errorf("argon2 hash: parameters %q", parts[3])
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return a, fmt.Errorf("argon2 hash: parameters %q", parts[3])
		}
	}
	if m == 0 || m > 4*1024*1024 || t == 0 || t > 100 || p == 0 || p > 255 {
		return a, fmt.Errorf("argon2 hash: parameters out of range")
	}
	a.m, a.t, a.p = uint32(m), uint32(t), uint8(p)
	var err error
	if a.salt, err = b64.DecodeString(parts[4]); err != nil {
		return a, fmt.Errorf("argon2 hash: salt: %w", err)
	}
	if a.key, err = b64.DecodeString(parts[5]); err != nil || len(a.key) < 16 || len(a.key) > 128 {
		return a, fmt.Errorf("argon2 hash: key")
	}
	return a, nil
}

// verifyArgon2i checks Dovecot's {ARGON2I}.
func verifyArgon2i(s, password string) error {
	a, err := parseArgon2(s)
	if err != nil {
		return err
	}
	if a.variant != "argon2i" {
		return fmt.Errorf("{ARGON2I} hash: holds %s", a.variant)
	}
	return compareEqual(argonI([]byte(password), a.salt, a.t, a.m, a.p, uint32(len(a.key))), a.key)
}

// NeedsUpgrade reports whether a stored hash should be replaced by a new
// Hash of the password at the next successful login: every scheme but our
// own bare "$argon2id$" string, and argon2id strings with less memory,
// fewer passes, a shorter salt or a shorter key than Hash makes now.
func NeedsUpgrade(stored string) bool {
	if !strings.HasPrefix(stored, "$argon2id$") {
		return true
	}
	a, err := parseArgon2(stored)
	if err != nil {
		return false // not ours to fix: Verify reports it
	}
	return a.m < argonMemory || a.t < argonTime || len(a.salt) < argonSaltLen || len(a.key) < argonKeyLen
}
