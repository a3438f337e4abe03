package tlsconf

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreSNIAndReload(t *testing.T) {
	root := t.TempDir()
	s := NewStore(root, "mx.example.test")
	if err := s.Load(); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("empty dir: %v", err)
	}
	for _, names := range [][]string{{"mx.example.test", "127.0.0.1"}, {"mail.other.test", "*.other.test"}} {
		if _, err := SelfSigned(root, names, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sni, want string }{
		{"", "mx.example.test"}, {"MX.example.test.", "mx.example.test"},
		{"imap.other.test", "mail.other.test"}, {"unknown.test", "mx.example.test"},
	} {
		got, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: c.sni})
		if err != nil || got.Leaf.Subject.CommonName != c.want {
			t.Errorf("SNI %q: %v %v, want %s", c.sni, err, got.Leaf.Subject.CommonName, c.want)
		}
	}
	// A renewed certificate is served without a restart.
	old, _ := s.GetCertificate(&tls.ClientHelloInfo{})
	if _, err := SelfSigned(root, []string{"mx.example.test"}, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	s.checked = time.Time{} // skip the recheck interval
	now, _ := s.GetCertificate(&tls.ClientHelloInfo{})
	if now.Leaf.SerialNumber.Cmp(old.Leaf.SerialNumber) == 0 {
		t.Error("renewed certificate not picked up")
	}
	// A broken pair is skipped; the others still serve.
	if err := os.WriteFile(filepath.Join(root, Dir, "broken.crt"), []byte("junk"), 0644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, Dir, "broken.key"), []byte("junk"), 0600); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(); err != nil {
		t.Errorf("one broken pair stopped the store: %v", err)
	}
	if s.Config().MinVersion != tls.VersionTLS12 {
		t.Error("TLS floor is not 1.2")
	}
}
