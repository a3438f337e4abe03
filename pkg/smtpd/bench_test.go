package smtpd

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"mailsrv/pkg/config"
)

// BenchmarkMessage sends 1 KB messages over one loopback connection to an
// in-process server with a fake injector: the cost of smtpd's own work per
// message (go-smtp, the checks, the Received header, the spool).
func BenchmarkMessage(b *testing.B) {
	root := b.TempDir()
	if err := config.Init(root, "mx.example.test"); err != nil {
		b.Fatal(err)
	}
	for rel, text := range map[string]string{
		config.FileDomains: "example.test\n",
		config.FileUsers:   "alice@example.test:x\n",
	} {
		if err := writeFile(root, rel, text); err != nil {
			b.Fatal(err)
		}
	}
	addr, inj := startServer(b, Options{Config: config.Open(root), Injector: &fakeInjector{discard: true},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := dial(b, addr)
	c.cmd("EHLO client.test", "250 ")
	body := "Subject: bench\r\nFrom: a@b.test\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 12)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := range b.N {
		c.send(fmt.Sprintf("MAIL FROM:<a%d@b.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n", i))
		c.expect("250 ")
		c.expect("250 ")
		c.expect("354 ")
		c.send(body + ".\r\n")
		c.expect("250 ")
	}
	b.StopTimer()
	if n := inj.count(); n != b.N {
		b.Fatalf("%d queued, want %d", n, b.N)
	}
}
