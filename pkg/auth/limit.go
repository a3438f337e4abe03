package auth

import (
	"runtime"

	"golang.org/x/crypto/argon2"
)

// argonSlots bounds the argon2 computations running at once in this
// process. Each takes its memory parameter (64 MiB for our hashes): without
// a bound, a daemon serving hundreds of connections could be made to
// allocate gigabytes by as many simultaneous logins. The others wait.
var argonSlots = make(chan struct{}, max(2, runtime.NumCPU()))

func withArgonSlot(f func() []byte) []byte {
	argonSlots <- struct{}{}
	defer func() { <-argonSlots }()
	return f()
}

// argonID is argon2.IDKey within the process-wide bound.
func argonID(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	return withArgonSlot(func() []byte { return argon2.IDKey(pw, salt, t, m, p, n) })
}

// argonI is argon2.Key (argon2i) within the same bound.
func argonI(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	return withArgonSlot(func() []byte { return argon2.Key(pw, salt, t, m, p, n) })
}
