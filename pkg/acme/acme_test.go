package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailsrv/pkg/tlsconf"
)

// fakeDNS answers A 127.0.0.1 for every name, so Pebble's validation of
// the http-01 challenge comes back to this machine's loopback.
func fakeDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Pebble asks over TCP: serve both on the same port.
	tl, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				rr, _ := dns.NewRR(q.Name + " 60 IN A 127.0.0.1")
				m.Answer = append(m.Answer, rr)
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: tl, Handler: handler}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// freePort returns a loopback port that was free a moment ago, below the
// kernel's ephemeral range: a port taken from that range (port 0) may be
// handed out meanwhile as the source port of any connection (pebble's, a
// parallel test's), and the later bind fails with EADDRINUSE.
func freePort(t *testing.T) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		_, _ = fmt.Sscan(string(b), &low)
	}
	for range 200 {
		p := 10000 + rand.IntN(max(1, low-10000))
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			_ = l.Close()
			return p
		}
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}

// pebble builds and starts Let's Encrypt's test CA on loopback and returns
// its directory URL and an HTTP client that trusts its API certificate.
func pebble(t *testing.T, httpPort int) (string, string, *http.Client) {
	t.Helper()
	dir := t.TempDir()
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("pebble module: %v", err)
	}
	src := strings.TrimSpace(string(modDir))
	bin := filepath.Join(dir, "pebble")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	api, mgmt := freePort(t), freePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", api),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":             filepath.Join(src, "test/certs/localhost/cert.pem"),
		"privateKey":              filepath.Join(src, "test/certs/localhost/key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 freePort(t),
	}}
	b, _ := json.Marshal(conf)
	cfg := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfg, b, 0644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfg, "-dnsserver", fakeDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble log:\n%s", log.String())
		}
	})
	caPEM, err := os.ReadFile(filepath.Join(src, "test/certs/pebble.minica.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	dirURL := fmt.Sprintf("https://127.0.0.1:%d/dir", api)
	for i := 0; ; i++ {
		resp, err := client.Get(dirURL)
		if err == nil {
			_ = resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("pebble did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return dirURL, fmt.Sprintf("https://127.0.0.1:%d", mgmt), client
}

func TestObtainFromPebble(t *testing.T) {
	httpPort := freePort(t)
	dirURL, mgmt, client := pebble(t, httpPort)
	root := t.TempDir()
	o := Options{Root: root, Directory: dirURL, Email: "admin@example.test",
		Names: []string{"mail.example.test", "imap.example.test"}, HTTPAddr: fmt.Sprintf("127.0.0.1:%d", httpPort),
		RenewBefore: 30 * 24 * time.Hour, HTTPClient: client}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, err := Renew(ctx, o)
	if err != nil || !got {
		t.Fatalf("first Renew: %v %v", got, err)
	}
	// Served through tlsconf, it verifies against Pebble's root.
	store := tlsconf.NewStore(root, "mail.example.test")
	if err := store.Load(); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", store.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	resp, err := client.Get(mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	roots := x509.NewCertPool()
	if b, _ := pem.Decode(rootPEM); b == nil || !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: %q", rootPEM)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "imap.example.test", RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS with the obtained certificate: %v", err)
	}
	_ = conn.Close()
	// Still valid: nothing to do.
	if got, err := Renew(ctx, o); err != nil || got {
		t.Errorf("second Renew: %v %v, want no new certificate", got, err)
	}
	// A new name is not covered: obtain again.
	o.Names = append(o.Names, "pop.example.test")
	if got, err := Renew(ctx, o); err != nil || !got {
		t.Errorf("Renew with a new name: %v %v", got, err)
	}
}
