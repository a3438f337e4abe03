package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smtplibQuota sends, with Python's smtplib, a message of about the given
// size in bytes from sender@example.test to demo@example.test and prints the
// replies to RCPT and DATA.
const smtplibQuota = `
import smtplib, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = smtplib.SMTP(host, port, local_hostname="client.test", timeout=60)
s.ehlo()
s.mail("sender@example.test")
code, _ = s.rcpt("demo@example.test")
dcode = 0
if code == 250:
    dcode, _ = s.data("Subject: size " + str(size) + "\r\nMessage-ID: <q" + str(size) + "@client.test>\r\n\r\n" + ("x" * 70 + "\r\n") * (size // 72))
else:
    s.rset()
print(code, dcode)
s.quit()
`

// imaplibQuota prints what GETQUOTAROOT INBOX says.
const imaplibQuota = `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.sock.settimeout(30)
m.login(sys.argv[3], sys.argv[4])
typ, data = m.getquotaroot("INBOX")
print(typ, [d.decode() for d in data[1]])
m.logout()
`

// maildirsizeSum adds up the lines of a Maildir++ maildirsize file after
// the limit line.
func maildirsizeSum(t *testing.T, mbox string) (limit string, size, count int64) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(mbox, "maildirsize"))), "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		s, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if len(f) != 2 || err1 != nil || err2 != nil {
			t.Fatalf("maildirsize line %q", l)
		}
		size, count = size+s, count+c
	}
	return lines[0], size, count
}

// A user with a quota set by mailctl: a message that fits is delivered
// (through smtpd, the queue and deliver's LMTP worker), one that does not
// is bounced to the sender with 5.2.2; maildirsize agrees with the files
// and with what imaplib's GETQUOTAROOT reports.
func TestQuotaDelivery(t *testing.T) {
	r := newRoot(t)
	r.addUser("sender@example.test")
	mailctlFails(t, r.Dir, "", 65, "quota", "user", "quota", "demo@example.test", "lots")
	mailctlOK(t, r.Dir, "", "user", "quota", "demo@example.test", "4k")
	if users := readFile(t, filepath.Join(r.Dir, "etc/users")); !strings.Contains(users, "demo@example.test:") ||
		!strings.Contains(users, ":quota=4K\n") {
		t.Fatalf("etc/users:\n%s", users)
	}
	r.startQueue("--deliver-mode", "process")
	_, addr := r.startSMTPD()
	host, port := splitAddr(t, addr)
	demo, sender := r.mailbox("demo"), r.mailbox("sender")

	for _, size := range []string{"1000", "5000"} {
		out, err := python(t, smtplibQuota, host, port, size)
		if err != nil || out != "250 250\n" {
			t.Fatalf("smtplib (%s bytes): %v\n%s", size, err, out)
		}
	}
	waitFor(t, 30*time.Second, "the bounce", func() bool { return len(messages(t, sender)) == 1 })
	if n := len(messages(t, demo)); n != 1 {
		t.Fatalf("demo has %d messages, want the small one", n)
	}
	dsn := readFile(t, messages(t, sender)[0])
	for _, want := range []string{"Final-Recipient: rfc822; demo@example.test", "Action: failed",
		"Status: 5.2.2", "mailbox full", "Message-ID: <q5000@client.test>"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("bounce lacks %q:\n%s", want, dsn)
		}
	}
	// maildirsize: the limit, and the CRLF size of the one file.
	file := messages(t, demo)[0]
	wsize, err := strconv.ParseInt(file[strings.LastIndex(file, ",W=")+3:], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	limit, size, count := maildirsizeSum(t, demo)
	if limit != "4096S" || size != wsize || count != 1 {
		t.Errorf("maildirsize: %s, %d bytes in %d messages; the file has %d bytes", limit, size, count, wsize)
	}
	_, iaddr := r.startIMAPD()
	ihost, iport := splitAddr(t, iaddr)
	out, err := python(t, imaplibQuota, ihost, iport, "demo@example.test", DemoPassword)
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	if want := "OK ['\"\" (STORAGE " + strconv.FormatInt((size+1023)/1024, 10) + " 4)']\n"; out != want {
		t.Errorf("GETQUOTAROOT: %q, want %q", out, want)
	}

	// The administrator lowers the quota below the usage; the mailbox has
	// not changed for an hour, so maildirsize is believed: smtpd refuses
	// at RCPT, and nothing is queued or bounced.
	mailctlOK(t, r.Dir, "", "user", "quota", "demo@example.test", "1K")
	hourAgo := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(demo, sub), hourAgo, hourAgo); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := python(t, smtplibQuota, host, port, "100"); err != nil || out != "552 0\n" {
		t.Fatalf("smtplib to a full mailbox: %v\n%s", err, out)
	}
}

// deliver -d on a full mailbox: exit 73 (EX_CANTCREAT, permanent for
// Postfix's pipe), or 75 with --quota-tempfail or MAILSRV_QUOTA_TEMPFAIL.
func TestQuotaDeliverExit(t *testing.T) {
	r := newRoot(t)
	mailctlOK(t, r.Dir, "", "user", "quota", "demo@example.test", "100")
	msg := "Subject: big\n\n" + strings.Repeat("y", 200) + "\n"
	for _, c := range []struct {
		args []string
		env  string
		code int
	}{
		{nil, "", 73},
		{[]string{"--quota-tempfail"}, "", 75},
		{nil, "MAILSRV_QUOTA_TEMPFAIL=1", 75},
	} {
		cmd := exec.Command(bin(t, "deliver"), append([]string{"--root", r.Dir, "-d", "demo@example.test"}, c.args...)...)
		cmd.Stdin = strings.NewReader(msg)
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		if code := exitCode(err); code != c.code || !strings.Contains(string(out), "mailbox full") {
			t.Errorf("deliver %v %s: exit %d, want %d\n%s", c.args, c.env, code, c.code, out)
		}
	}
	if n := len(messages(t, r.mailbox("demo"))); n != 0 {
		t.Errorf("%d messages delivered over the quota", n)
	}
	mailctlOK(t, r.Dir, "", "user", "quota", "demo@example.test", "none")
	cmd := exec.Command(bin(t, "deliver"), "--root", r.Dir, "-d", "demo@example.test")
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("without a quota: %v\n%s", err, out)
	}
}
