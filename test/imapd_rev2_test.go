package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Python's imaplib with IMAP4rev2 and UTF8=ACCEPT enabled (a raw ENABLE
// and IMAP4.enable), and as a plain rev1 client of the same folders.
func TestIMAPDImaplibRev2(t *testing.T) {
	r := newRoot(t)
	imapDeliver(t, r.mailbox("demo"), filepath.Join(imapTestdata, "simple.eml"))
	_, addr := r.startIMAPD()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("python3", filepath.Join(imapTestdata, "imaplib_rev2.py"),
		host, port, "demo@example.test", DemoPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}
