package mailstore

import (
	"runtime/debug"
	"testing"
)

// TestLeanNested: overlapping builds restore the administrator's target
// only when the last ends, whatever order they end in; a lower target or
// GC off is left alone.
func TestLeanNested(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	a := lean()
	if got := debug.SetGCPercent(-1); got != leanPercent {
		t.Fatalf("target during a build: %d, want %d", got, leanPercent)
	}
	debug.SetGCPercent(leanPercent)
	b := lean()
	a()
	a() // twice: counted once
	if got := debug.SetGCPercent(leanPercent); got != leanPercent {
		t.Fatalf("target with one build left: %d, want %d", got, leanPercent)
	}
	b()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Fatalf("target after both: %d, want 150", got)
	}
	for _, low := range []int{10, -1} {
		debug.SetGCPercent(low)
		c := lean()
		if got := debug.SetGCPercent(low); got != low {
			t.Fatalf("GOGC=%d during a build: %d", low, got)
		}
		c()
		if got := debug.SetGCPercent(150); got != low {
			t.Fatalf("GOGC=%d after a build: %d", low, got)
		}
	}
}
