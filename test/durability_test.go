package e2e

import (
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Kill `queue run` with SIGKILL in the middle of a batch, start it again,
// and check that every accepted message reached the Maildir: duplicates
// are allowed, losses are not.
func TestQueueSurvivesSIGKILL(t *testing.T) {
	for _, mode := range []string{"direct", "process"} {
		t.Run(mode, func(t *testing.T) { survivesSIGKILL(t, mode) })
	}
}

func survivesSIGKILL(t *testing.T, mode string) {
	r := newRoot(t)
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			msg := fmt.Sprintf("Subject: batch %d\nMessage-ID: <m%d@test>\n\nbody %d\n", i, i, i)
			if out, err := r.inject(t, msg, "a@b.test", "demo@example.test"); err != nil {
				errs <- fmt.Errorf("inject %d: %v %s", i, err, out)
			}
		}()
		if i == n/3 {
			wg.Wait() // a third is queued before the scheduler starts
		}
	}
	q := r.startQueue("--concurrency", "4", "--deliver-mode", mode)
	// Kill it once deliveries are under way but not finished.
	waitFor(t, 30*time.Second, "some deliveries", func() bool { return len(messages(t, r.mailbox("demo"))) >= n/10 })
	q.Kill()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	delivered := len(messages(t, r.mailbox("demo")))
	t.Logf("%d of %d delivered before SIGKILL", delivered, n)
	r.startQueue("--concurrency", "4", "--deliver-mode", mode)
	waitFor(t, 60*time.Second, "empty queue", func() bool { return queueEmpty(t, r) })
	seen := map[string]int{}
	re := regexp.MustCompile(`Message-ID: <(m\d+)@test>`)
	for _, f := range messages(t, r.mailbox("demo")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := re.FindSubmatch(b); m != nil {
			seen[string(m[1])]++
		}
	}
	dups := 0
	for i := 0; i < n; i++ {
		c := seen[fmt.Sprintf("m%d", i)]
		if c == 0 {
			t.Errorf("message m%d lost", i)
		}
		dups += max(c-1, 0)
	}
	t.Logf("%d duplicates after the crash", dups)
}
