package smtpd

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/tlsconf"
)

// FuzzSession feeds arbitrary client octets through a whole session over
// net.Pipe, with a fake injector. It must not panic or hang; the session
// must end once the input does. Seeds: testdata/fuzz/FuzzSession.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO a\r\nMAIL FROM:<b@c.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\n.\r\nMAIL FROM:<e@v.test>\r\n.\r\n",
		"EHLO a\r\nMAIL FROM:<b@c.test>\r\nRCPT TO:<x@catchall.test>\r\nBDAT 5\r\nab\r\ncBDAT 3 LAST\r\nd\r\n",
		"HELO a\r\nMAIL FROM:<b@c.test> SIZE=99999999\r\nRCPT TO:<relay@else.test>\r\nRSET\r\nNOOP\r\n",
		"EHLO a\r\nMAIL FROM:<jö@c.test> SMTPUTF8\r\nRCPT TO:<alice+tag@example.test>\r\nDATA\r\nReceived: x\r\n\r\n\r.\r\n",
		"EHLO a\r\nBDAT 10 LAST\r\n0123456789MAIL FROM:<\r\nVRFY x\r\nSTARTTLS\r\nAUTH PLAIN\r\n",
		"EHLO a\r\nSTARTTLS\r\nMAIL FROM:<e@v.test>\r\nRCPT TO:<alice@example.test>\r\n",
		"EHLO a\r\nMAIL FROM:<b@c.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSTARTTLS\r\n.\r\nSTARTTLS\r\n",
	} {
		f.Add([]byte(s))
	}
	root := f.TempDir()
	if err := config.Init(root, "mx.example.test"); err != nil {
		f.Fatal(err)
	}
	writeFuzzRoot(f, root)
	cfg := config.Open(root)
	// With a certificate, STARTTLS and the discard of what follows it
	// (starttls.go) are on the fuzzed path too.
	if _, err := tlsconf.SelfSigned(root, []string{"mx.example.test"}, time.Hour); err != nil {
		f.Fatal(err)
	}
	tlsConfig := tlsconf.NewStore(root, "mx.example.test").Config()
	f.Fuzz(func(t *testing.T, in []byte) {
		var logBuf syncBuffer
		log := slog.New(slog.NewTextHandler(&logBuf, nil))
		srv, err := New(Options{
			Config: cfg, Injector: &fakeInjector{}, Hostname: "mx.example.test",
			MaxSize: 4096, MaxRecipients: 5, Timeout: 5 * time.Second, Log: log, TLS: tlsConfig,
		})
		if err != nil {
			t.Fatal(err)
		}
		cli, srvConn := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(srvConn) }()
		go func() { _, _ = io.Copy(io.Discard, cli) }()
		_ = cli.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = cli.Write(in)
		_ = cli.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ServeConn: %v", err)
			}
			// go-smtp recovers a panic in a handler and logs it.
			if strings.Contains(logBuf.String(), "panic") {
				t.Fatalf("panic logged:\n%s", logBuf.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("session did not end after its input did")
		}
	})
}

func writeFuzzRoot(f *testing.F, root string) {
	f.Helper()
	for rel, text := range map[string]string{
		config.FileDomains: "example.test\ncatchall.test\n",
		// The hash is never checked here: smtpd only asks whether the
		// user exists.
		config.FileUsers:   "alice@example.test:$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$a2V5\n",
		config.FileAliases: "@catchall.test: alice@example.test\n",
	} {
		if err := writeFile(root, rel, text); err != nil {
			f.Fatal(err)
		}
	}
}

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
