package authhelper

import (
	"runtime/debug"

	"mailsrv/pkg/auth"
)

// KeepArgonMemory makes this process keep argon2's memory resident
// between checks, and returns the memory limit it set (bytes).
//
// Each argon2id check allocates its 64 MiB afresh (x/crypto/argon2 takes
// no buffer). With Go's defaults, the collection after a check finds a
// small live heap, its goal drops to a few MiB, and the background
// scavenger gives the 64 MiB back to the system within about a second;
// the next login, seconds later, faults them in again (BenchmarkVerify
// in pkg/auth: about 70 ms of CPU with the memory warm, 180 ms faulting
// it). So the service turns off the proportional collector
// (SetGCPercent(-1)) and collects against a memory limit instead
// (SetMemoryLimit, runtime/debug): the heap grows to the limit, a
// collection frees what argon2 left, and the scavenger returns memory
// only above 95 % of the limit, which it does not reach. Freed spans are
// reused by the next check without a page fault.
//
// The limit is room for every argon2 slot of the process (auth.ArgonSlots,
// at least 2) running at once, one more computation's worth of garbage,
// and 32 MiB for the rest of the service (connections, etc/users): 224 MiB
// on a 2-core machine, resident once a few logins have run. A hash with a
// bigger memory parameter than ours still works; the runtime then collects
// more often, and may return memory.
func KeepArgonMemory() int64 {
	limit := int64(auth.ArgonSlots()+1)*auth.ArgonMemory + 32<<20
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(limit)
	return limit
}
