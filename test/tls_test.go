package e2e

import (
	"crypto/tls"
	"os/exec"
	"strings"
	"testing"
)

// mailctl tls selfsigned writes a pair that tls.LoadX509KeyPair accepts
// and tls list shows.
func TestMailctlTLSSelfSigned(t *testing.T) {
	r := newRoot(t)
	out, err := exec.Command(bin(t, "mailctl"), "--root", r.Dir, "tls", "selfsigned", "mx.example.test", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("selfsigned: %v %s", err, out)
	}
	crt := strings.TrimSpace(string(out))
	if _, err := tls.LoadX509KeyPair(crt, strings.TrimSuffix(crt, ".crt")+".key"); err != nil {
		t.Fatalf("pair: %v", err)
	}
	out, err = exec.Command(bin(t, "mailctl"), "--root", r.Dir, "tls", "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mx.example.test") || !strings.Contains(string(out), "127.0.0.1") {
		t.Fatalf("tls list: %v %s", err, out)
	}
	out, err = exec.Command(bin(t, "mailctl"), "--root", r.Dir, "tls", "selfsigned").CombinedOutput()
	if exitCode(err) != 64 {
		t.Errorf("selfsigned without a name: exit %d %s", exitCode(err), out)
	}
}
