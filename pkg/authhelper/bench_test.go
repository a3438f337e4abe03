package authhelper

import (
	"context"
	"math"
	"net"
	"runtime/debug"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSocketCheck is a right password checked through the service
// on its socket, the service in this process: one check after another
// (busy), with a pause of 2 s before each (logins seconds apart), and
// with 130 s before each (idle: Go's defaults collect after two idle
// minutes, and then give the memory back), with the service's memory
// setting (keep:
// KeepArgonMemory) and with Go's defaults. faults/op are this process's
// minor page faults per check: about 16,000 (64 MiB of 4 KiB pages) when
// argon2's memory was given back. Each case in its own process, as the
// settings are the process's:
//
//	for c in keep/busy keep/pause default/busy default/pause; do
//		go test ./pkg/authhelper -run '^$' -bench "SocketCheck/$c\$" -benchtime 5x
//	done
//	go test ./pkg/authhelper -run '^$' -bench 'SocketCheck/.*/idle' -benchtime 2x  # 10 minutes
func BenchmarkSocketCheck(b *testing.B) {
	for _, keep := range []bool{true, false} {
		for _, pause := range []string{"busy", "pause", "idle"} {
			name := "default/" + pause
			if keep {
				name = "keep/" + pause
			}
			b.Run(name, func(b *testing.B) { benchCheck(b, keep, pause) })
		}
	}
}

// pauses are the waits before each check: 2 s, and 130 s, longer than
// the runtime's forced collection period (2 minutes).
var pauses = map[string]time.Duration{"pause": 2 * time.Second, "idle": 130 * time.Second}

func benchCheck(b *testing.B, keep bool, pause string) {
	if keep {
		KeepArgonMemory()
		defer func() {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			collectAfterCheck.Store(false)
		}()
	}
	path, _ := service(b, testRoot(b), "", nil)
	sb := &SocketBackend{Path: path, Local: noLocal{b}}
	check := func() {
		if _, err := sb.Check(context.Background(), "bob@example.org", password); err != nil {
			b.Fatal(err)
		}
	}
	check() // the first faults the memory in
	var faults int64
	b.ResetTimer()
	for range b.N {
		if pause != "busy" {
			b.StopTimer()
			time.Sleep(pauses[pause])
			b.StartTimer()
		}
		before := minorFaults()
		check()
		faults += minorFaults() - before
	}
	b.ReportMetric(float64(faults)/float64(b.N), "faults/op")
}

func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

// BenchmarkSocketLookup is what a connection per request costs beside
// the request itself: a look-up (no argon2) on a new connection each
// time, as SocketBackend does for checks, and on one kept connection.
func BenchmarkSocketLookup(b *testing.B) {
	path, _ := service(b, testRoot(b), "", nil)
	lookup := func(c *Client) {
		if _, found, err := c.Lookup("bob@example.org"); err != nil || !found {
			b.Fatal(found, err)
		}
	}
	b.Run("dial-each", func(b *testing.B) {
		for b.Loop() {
			conn, err := net.Dial("unix", path)
			if err != nil {
				b.Fatal(err)
			}
			lookup(NewClient(conn, conn))
			if err := conn.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-connection", func(b *testing.B) {
		conn, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		c := NewClient(conn, conn)
		for b.Loop() {
			lookup(c)
		}
	})
}
