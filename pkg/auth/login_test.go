package auth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"mailsrv/pkg/config"
)

func TestLogin(t *testing.T) {
	root := t.TempDir()
	if err := config.Init(root, "mx.example.org"); err != nil {
		t.Fatal(err)
	}
	h, err := Hash("violet tram ledger ninety")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(root, config.FileUsers)
	if err := os.WriteFile(users, []byte("alice@example.org:"+h+"\nodd@example.org:{MD5}x\n"), 0600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Open(root)
	tests := []struct {
		name, user, pass string
		want             error
	}{
		{name: "right", user: "alice@example.org", pass: "violet tram ledger ninety"},
		{name: "case of local part", user: "Alice@Example.org", pass: "violet tram ledger ninety"},
		{name: "wrong password", user: "alice@example.org", pass: "x", want: ErrMismatch},
		{name: "unknown user", user: "bob@example.org", pass: "x", want: ErrMismatch},
		{name: "not an address", user: "alice", pass: "x", want: ErrMismatch},
		{name: "unknown scheme", user: "odd@example.org", pass: "x", want: ErrUnknownScheme},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Login(cfg, tt.user, tt.pass)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Login = %v, want %v", err, tt.want)
			}
			if err == nil && u.Addr.Key() != "alice@example.org" {
				t.Errorf("user %v", u.Addr)
			}
		})
	}
	// A control file that cannot be parsed is the server's fault.
	if err := os.WriteFile(users, []byte("not a user line\n"), 0600); err != nil {
		t.Fatal(err)
	}
	if _, err := Login(cfg, "alice@example.org", "x"); err == nil || errors.Is(err, ErrMismatch) {
		t.Errorf("Login with a broken users file = %v", err)
	}
}
