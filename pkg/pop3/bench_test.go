package pop3

import (
	"strconv"
	"strings"
	"testing"

	"mailsrv/pkg/maildir"
)

// BenchmarkSession is one keep-on-server download of a 1,000-message
// mailbox (login, STAT, UIDL, RETR of each, QUIT) over loopback TCP; the
// bench/pop3 script compares the same against Dovecot on 10,000.
func BenchmarkSession(b *testing.B) {
	e := newEnv(b)
	dir := e.mailbox()
	body := strings.Repeat("a line of text that is about seventy characters long, more or less\n", 40)
	for i := range 1000 {
		if _, err := maildir.Deliver(dir, []byte("Subject: "+strconv.Itoa(i)+"\n\n"+body), strings.NewReader("")); err != nil {
			b.Fatal(err)
		}
	}
	e.start()
	for b.Loop() {
		c := e.dial()
		c.login()
		c.cmd("STAT", "+OK 1000 ")
		c.cmd("UIDL", "+OK")
		c.multi()
		for i := 1; i <= 1000; i++ {
			c.cmd("RETR "+strconv.Itoa(i), "+OK")
			c.multi()
		}
		c.cmd("QUIT", "+OK")
		_ = c.c.Close()
	}
}
