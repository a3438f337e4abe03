package auth

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"golang.org/x/crypto/argon2"
)

// argonSlots bounds the argon2 computations running at once in this
// process. Each takes its memory parameter (64 MiB for our hashes): without
// a bound, a daemon serving hundreds of connections could be made to
// allocate gigabytes by as many simultaneous logins. The others wait.
var argonSlots = make(chan struct{}, max(2, runtime.NumCPU()))

// ArgonSlots is how many argon2 computations may run at once in this
// process, and ArgonMemory the memory each takes with the parameters of
// new hashes: the auth service keeps that much resident.
func ArgonSlots() int { return cap(argonSlots) }

// ArgonMemory is the memory in bytes of one argon2id computation for the
// hashes Hash makes.
const ArgonMemory = argonMemory * 1024

func withArgonSlot(f func() []byte) []byte {
	argonSlots <- struct{}{}
	small := liveHeap() < 32<<20 // before the computation's own memory
	key := f()
	<-argonSlots
	if ReturnMemory && small && len(argonSlots) == 0 {
		debug.FreeOSMemory()
	}
	return key
}

// ReturnMemory, set by a daemon serving one connection (daemon.Serve on
// stdin/stdout), gives argon2's memory back to the system after each
// computation. A process serving many connections keeps it instead: giving
// it back made every later login fault 64 MiB in again, 180 ms of CPU
// instead of 70 (BenchmarkVerify).
var ReturnMemory bool

// After a computation, when none other is running and little else was
// live before it, its memory is given back to the system at once: after a
// login the 64 MiB are garbage but stay resident until Go's scavenger
// returns them, and a session's own growth comes on top of them in its
// peak RSS (bench/imap: 147 MiB for a session of 100,000 messages, 74 MiB
// of it right after LOGIN). The forced collection costs about a
// millisecond with a small live heap; with a large one (imapd --listen
// holding listings) it would cost more than it saves, and is skipped.

// liveHeap returns the heap found live by the last collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 1 << 62
	}
	return s[0].Value.Uint64()
}

// argonID is argon2.IDKey within the process-wide bound.
func argonID(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	return withArgonSlot(func() []byte { return argon2.IDKey(pw, salt, t, m, p, n) })
}

// argonI is argon2.Key (argon2i) within the same bound.
func argonI(pw, salt []byte, t, m uint32, p uint8, n uint32) []byte {
	return withArgonSlot(func() []byte { return argon2.Key(pw, salt, t, m, p, n) })
}
