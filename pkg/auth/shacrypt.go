package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
)

// SHA-crypt, the "$5$" (SHA-256) and "$6$" (SHA-512) schemes of glibc's
// crypt(3), implemented from Ulrich Drepper's specification "Unix crypt
// using SHA-256 and SHA-512" (https://www.akkadia.org/drepper/SHA-crypt.txt).
// Dovecot stores them as {SHA256-CRYPT} and {SHA512-CRYPT}. We only verify
// them: a successful login rewrites the hash as argon2id.

const (
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	shaCryptMaxRounds     = 999999999
	shaCryptMaxSalt       = 16
)

// shaCryptAlphabet is crypt(3)'s base-64 alphabet (not RFC 4648's).
const shaCryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// verifySHACrypt checks password against a "$5$..." or "$6$..." string.
func verifySHACrypt(stored, password string) error {
	id, rounds, salt, sum, err := parseSHACrypt(stored)
	if err != nil {
		return err
	}
	got := shaCrypt(id, []byte(password), []byte(salt), rounds)
	if subtle.ConstantTimeCompare([]byte(got), []byte(sum)) != 1 {
		return ErrMismatch
	}
	return nil
}

// parseSHACrypt splits "$ID$[rounds=N$]SALT$SUM". Out-of-range rounds are
// clamped as the specification says; a salt is at most 16 characters.
func parseSHACrypt(s string) (id string, rounds int, salt, sum string, err error) {
	parts := strings.Split(s, "$")
	if len(parts) < 4 || parts[0] != "" || (parts[1] != "5" && parts[1] != "6") {
		return "", 0, "", "", fmt.Errorf("sha-crypt hash: bad format")
	}
	id, rest := parts[1], parts[2:]
	rounds = shaCryptDefaultRounds
	if r, ok := strings.CutPrefix(rest[0], "rounds="); ok {
		n, perr := strconv.ParseUint(r, 10, 64)
		if perr != nil {
			return "", 0, "", "", fmt.Errorf("sha-crypt hash: rounds %q", r)
		}
		rounds = int(min(max(n, shaCryptMinRounds), shaCryptMaxRounds))
		rest = rest[1:]
	}
	if len(rest) != 2 {
		return "", 0, "", "", fmt.Errorf("sha-crypt hash: %d fields", len(rest))
	}
	salt, sum = rest[0], rest[1]
	want := 86
	if id == "5" {
		want = 43
	}
	if len(salt) > shaCryptMaxSalt || len(sum) != want {
		return "", 0, "", "", fmt.Errorf("sha-crypt hash: bad salt or checksum length")
	}
	return id, rounds, salt, sum, nil
}

// shaCrypt computes the checksum part of a SHA-crypt string, following the
// numbered steps of the specification.
func shaCrypt(id string, pw, salt []byte, rounds int) string {
	newHash := sha512.New
	if id == "5" {
		newHash = sha256.New
	}
	sum := func(parts ...[]byte) []byte {
		h := newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	// Steps 4-8: digest B = H(password salt password).
	b := sum(pw, salt, pw)
	// Steps 1-3, 9-12: digest A.
	ha := newHash()
	ha.Write(pw)
	ha.Write(salt)
	ha.Write(repeatTo(b, len(pw)))
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(pw)
		}
	}
	a := ha.Sum(nil)
	// Steps 13-16: sequence P from digest DP.
	dp := sum(repeatBytes(pw, len(pw))...)
	p := repeatTo(dp, len(pw))
	// Steps 17-20: sequence S from digest DS, salt repeated 16+A[0] times.
	ds := sum(repeatBytes(salt, 16+int(a[0]))...)
	s := repeatTo(ds, len(salt))
	// Step 21: the rounds.
	c := a
	h := newHash()
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	return shaCryptEncode(id, c)
}

// repeatTo returns d repeated to exactly n bytes.
func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

func repeatBytes(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// shaCryptEncode is step 22: the digest's bytes, shuffled in groups of
// three, in crypt(3)'s base 64, least significant 6 bits first.
func shaCryptEncode(id string, c []byte) string {
	var out strings.Builder
	put := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out.WriteByte(shaCryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	if id == "5" {
		// (0,10,20), (21,1,11), (12,22,2), ... rotating one way.
		for i := range 10 {
			x, y, z := c[i], c[i+10], c[i+20]
			switch i % 3 {
			case 0:
				put(x, y, z, 4)
			case 1:
				put(z, x, y, 4)
			case 2:
				put(y, z, x, 4)
			}
		}
		put(0, c[31], c[30], 3)
		return out.String()
	}
	// (0,21,42), (22,43,1), (44,2,23), ... rotating the other way.
	for i := range 21 {
		x, y, z := c[i], c[i+21], c[i+42]
		switch i % 3 {
		case 0:
			put(x, y, z, 4)
		case 1:
			put(y, z, x, 4)
		case 2:
			put(z, x, y, 4)
		}
	}
	put(0, 0, c[63], 2)
	return out.String()
}
