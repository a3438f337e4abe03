package config

import (
	"errors"
	"os"
	"testing"
	"time"

	"mailsrv/pkg/address"
	"mailsrv/pkg/safefile"
)

// An unknown recipient is a temporary failure while etc/users is being
// rewritten in place (an editor that truncates, then writes), and a
// permanent one when the file was replaced by a rename, or once it has
// been quiet for mtimeSlack.
func TestUnsettledUsers(t *testing.T) {
	users := "bob@example.org:$argon2id$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n"
	c := writeRoot(t, map[string]string{FileDomains: "example.org\n", FileUsers: users, FileAliases: ""})
	nobody := address.Address{Local: "nobody", Domain: "example.org"}
	if _, err := c.Resolve(nobody); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("new file: %v, want ErrNoSuchUser", err)
	}
	time.Sleep(1100 * time.Millisecond)                                          // the file is now older than its next change
	if err := os.WriteFile(c.Path(FileUsers), []byte(users), 0644); err != nil { // in place
		t.Fatal(err)
	}
	if _, err := c.Resolve(nobody); !errors.Is(err, ErrUnsettled) || errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("rewritten in place: %v, want ErrUnsettled only", err)
	}
	if ok, err := c.Exists(nobody); ok || !errors.Is(err, ErrUnsettled) {
		t.Fatalf("Exists while unsettled: %v %v", ok, err)
	}
	// Known users resolve as ever.
	if _, err := c.Resolve(address.Address{Local: "bob", Domain: "example.org"}); err != nil {
		t.Fatalf("bob while unsettled: %v", err)
	}
	if err := safefile.WriteFile(c.Path(FileUsers), []byte(users), 0644); err != nil { // by rename
		t.Fatal(err)
	}
	if _, err := c.Resolve(nobody); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("replaced by rename: %v, want ErrNoSuchUser", err)
	}
	// Quiet for mtimeSlack: permanent again.
	old := time.Now().Add(-mtimeSlack - time.Second)
	if err := os.Chtimes(c.Path(FileUsers), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(nobody); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("settled: %v, want ErrNoSuchUser", err)
	}
}
