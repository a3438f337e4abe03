package deliver

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
	"mailsrv/pkg/mailstore"
)

// quotaRoot makes a root whose user demo@example.test has quota=SIZE.
func quotaRoot(t *testing.T, quota string) (*config.Config, string) {
	t.Helper()
	root := t.TempDir()
	if err := config.Init(root, "mx.example.test"); err != nil {
		t.Fatal(err)
	}
	for rel, s := range map[string]string{
		"etc/domains": "example.test\n",
		"etc/users":   "demo@example.test:$argon2id$x:quota=" + quota + "\n",
	} {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(s), 0644); err != nil {
			t.Fatal(err)
		}
	}
	return config.Open(root), filepath.Join(root, "mail/example.test/demo")
}

// Deliveries fill the mailbox up to its quota, each one a line of
// maildirsize; the one that would go over is refused, permanently unless
// QuotaTempFail; the sizes agree with a scan (what IMAP QUOTA reports).
func TestQuota(t *testing.T) {
	cfg, mbox := quotaRoot(t, "1K")
	d := &Deliverer{Cfg: cfg}
	a, _ := address.Parse("demo@example.test")
	msg := []byte("Subject: q\n\n" + strings.Repeat("x", 200) + "\n")
	// The Return-Path and Delivered-To lines and the message, with CRLF.
	each := crlfSize(deliveryHeader("s@x.test", a.String()), msg)
	n := int(1024 / each)
	for i := range n {
		if _, err := d.ToUser(a, "s@x.test", msg); err != nil {
			t.Fatalf("message %d of %d bytes in 1K: %v", i+1, each, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(mbox, mailstore.MaildirsizeName))
	if err != nil {
		t.Fatal(err)
	}
	want := "1024S\n0 0\n" + strings.Repeat(strconv.FormatInt(each, 10)+" 1\n", n)
	if string(data) != want {
		t.Errorf("maildirsize:\n%s\nwant\n%s", data, want)
	}
	_, err = d.ToUser(a, "s@x.test", msg)
	if de := ErrorOf(err); de.Code != 552 || de.Status != "5.2.2" || de.Exit != ExitCantCreat || de.Temporary ||
		!strings.Contains(de.Msg, "mailbox full") {
		t.Fatalf("over quota: %+v", de)
	}
	// The refusal may have recounted (a file no newer than new/ may be
	// stale): the sum still agrees with a scan, which IMAP QUOTA reports.
	store := &mailstore.Store{Root: mbox}
	use, err := store.Quota(1024, 0)
	if err != nil {
		t.Fatal(err)
	}
	size, count, err := store.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if use.Size != size || use.Count != int64(count) || size != int64(n)*each || count != n {
		t.Errorf("scan: %d bytes in %d messages; maildirsize: %+v; want %d in %d", size, count, use, int64(n)*each, n)
	}
	d.QuotaTempFail = true
	_, err = d.ToUser(a, "s@x.test", msg)
	if de := ErrorOf(err); de.Code != 452 || de.Status != "4.2.2" || de.Exit != ExitTempFail || !de.Temporary {
		t.Errorf("over quota with QuotaTempFail: %+v", de)
	}
	// A smaller message still fits.
	if _, err := d.ToUser(a, "s@x.test", []byte("\n")); err != nil {
		t.Errorf("a small message: %v", err)
	}
	// A client deletes everything (as pop3d does, without a line in
	// maildirsize): the next delivery sees new/ changed and counts again.
	ents, err := os.ReadDir(filepath.Join(mbox, "new"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(mbox, "new", e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	d.QuotaTempFail = false
	if _, err := d.ToUser(a, "s@x.test", msg); err != nil {
		t.Errorf("after the mailbox was emptied: %v", err)
	}
}

// A quota= that is not a size keeps the mail (temporary failure) until the
// administrator fixes it.
func TestQuotaBadAttribute(t *testing.T) {
	cfg, _ := quotaRoot(t, "lots")
	a, _ := address.Parse("demo@example.test")
	_, err := (&Deliverer{Cfg: cfg}).ToUser(a, "", []byte("x\n"))
	if de := ErrorOf(err); !de.Temporary || de.Exit != ExitTempFail {
		t.Errorf("bad quota attribute: %+v", de)
	}
}
