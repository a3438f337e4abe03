package queue

import (
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// BenchmarkServeLMTP measures the long-lived inject path (what smtpd's
// injector children do per message) without process start-up: an LMTP
// client over a pipe, 1 KB messages, each fsynced and committed.
func BenchmarkServeLMTP(b *testing.B) {
	dir := b.TempDir()
	if err := Create(dir); err != nil {
		b.Fatal(err)
	}
	q := &Queue{Dir: dir}
	cs, ss := net.Pipe()
	go func() { _ = q.ServeLMTP(ss, 0, "bench") }()
	c := smtp.NewClientLMTP(cs)
	if err := c.Hello("bench"); err != nil {
		b.Fatal(err)
	}
	msg := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMail("a@b.test", []string{"c@d.test"}, strings.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = c.Quit()
}
