package authhelper

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// KeepArgonMemory makes this process keep argon2's memory resident
// between checks, and returns the memory limit it set (bytes).
//
// Each argon2id check allocates its 64 MiB afresh (x/crypto/argon2 takes
// no buffer). With Go's defaults, the memory stays while logins come
// often (the collection that a check's allocation starts finds that
// check's 64 MiB live, and the heap goal stays above them), but a
// collection while no check runs (the forced one after two idle minutes,
// or one started by other allocations) lowers the goal to a few MiB, the
// background scavenger gives the 64 MiB back to the system, and the next
// login faults them in again: about 16,000 page faults, 180 ms of CPU
// instead of 70 (BenchmarkVerify in pkg/auth, BenchmarkSocketCheck here).
//
// So the service turns the proportional collector off (SetGCPercent(-1),
// runtime/debug), which also stops the forced periodic collection, and
// collects itself after each check (runtime.GC), when the check's memory
// is garbage: the freed pages stay in the heap, counted by the next
// collection as in use (the scavenger keeps 110 % of that), and the next
// check reuses them without a fault. What stays resident is argon2's
// memory times the checks that ran at once (at most auth.ArgonSlots, 2
// on a 2-core machine), plus a few MiB: about 70 MiB after single logins,
// 140 MiB after two at once.
//
// The memory limit (SetMemoryLimit) is a safety net for what the
// collections after checks do not cover (look-ups, many connections):
// room for every slot running at once, one more check's garbage, and 64
// MiB; 320 MiB on a 2-core machine. Normal operation stays well below it,
// where the runtime would start giving memory back.
func KeepArgonMemory() int64 {
	limit := int64(auth.ArgonSlots()+2)*auth.ArgonMemory + 64<<20
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(limit)
	collectAfterCheck.Store(true)
	return limit
}

// collectAfterCheck is set by KeepArgonMemory.
var collectAfterCheck atomic.Bool

// afterCheck runs after each password check has been answered.
func afterCheck() {
	if collectAfterCheck.Load() {
		runtime.GC()
	}
}

// WarmUp checks a password for no user, as a check for an unknown user
// does (against a made-up hash, made on first use): the first real login
// then finds that hash made and argon2's memory resident, instead of
// paying for both (about 250 ms of CPU).
func WarmUp(cfg *config.Config) {
	_, _ = auth.Login(cfg, "", "warm-up")
	afterCheck()
}
