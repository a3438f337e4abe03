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
// no buffer). A process that gives them back faults them in again at the
// next check: about 16,000 page faults, 190 ms instead of 140 on this
// 2-core machine (BenchmarkVerify in pkg/auth). With Go's defaults the
// memory mostly stays (BenchmarkSocketCheck: a few faults a check with
// 2 s between checks, about 1,000 after 130 s idle), but only because the
// collection that a check's own allocation starts finds that check's 64
// MiB live and sets the heap goal above them; a collection while no check
// runs (the forced one after two idle minutes, or one started by other
// allocations) lowers the goal to a few MiB, and the scavenger may give
// the memory back.
//
// So the service does not leave it to when the runtime collects: it turns
// the proportional collector off (SetGCPercent(-1), runtime/debug), which
// also stops the forced periodic collection, and collects itself after
// each check (runtime.GC), when the check's memory is garbage. The freed
// pages stay in the heap (the scavenger keeps 110 % of what the last
// collection found in use, the check's memory included) and the next
// check reuses them: a few faults a check, busy, 2 s apart or 130 s
// apart (BenchmarkSocketCheck/keep). What stays resident is argon2's
// memory times the checks that ran at once (at most auth.ArgonSlots, 2 on
// a 2-core machine) plus a few MiB: 80 MiB of RSS after single logins,
// with a peak of 140 MiB from WarmUp's two computations (bench/imap/run.sh).
//
// The memory limit (SetMemoryLimit) is a safety net for what the
// collections after checks do not cover (look-ups, many connections):
// room for every slot running at once, one more check's garbage, and 64
// MiB; 320 MiB on a 2-core machine. Normal operation stays well below it:
// near it, the runtime collects and gives memory back.
func KeepArgonMemory() int64 {
	limit := int64(auth.ArgonSlots()+2)*auth.ArgonMemory + 64<<20
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(limit)
	collectAfterCheck.Store(true)
	return limit
}

// collectAfterCheck is set by KeepArgonMemory.
var collectAfterCheck atomic.Bool

// afterCheck runs after each password check, before its answer: collected
// after the answer, a check's memory would still be in use when the next
// check, sent at once, allocates its own, which would then come from new
// pages (BenchmarkSocketCheck/keep/busy: 7,000 faults a check instead of
// a few).
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
