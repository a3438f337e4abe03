package smtpd

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
)

// FuzzFromHeader feeds arbitrary header sections to the From check of
// submission: it must not panic, and its answer is accept, malformed or
// not owned. Seeds: testdata/fuzz/FuzzFromHeader.
func FuzzFromHeader(f *testing.F) {
	for _, s := range []string{
		"From: alice@example.test\n\nbody\n",
		"from: Alice\n <alice+x@example.test>\nSubject: y\n\n",
		"From: =?utf-8?q?D=C3=A9mo?= <alice@example.test>, bob@elsewhere.test\n\n",
		"From: \"a\\\"b\" <anything@catchall.test>\nFrom: (c) x@\n",
		"From: undisclosed:;\n\n",
		" \nFrom:\n\t\n\n",
		"From: jörg@example.test\n",
	} {
		f.Add([]byte(s))
	}
	root := f.TempDir()
	if err := config.Init(root, "mx.example.test"); err != nil {
		f.Fatal(err)
	}
	writeFuzzRoot(f, root)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &Server{opts: Options{Config: config.Open(root), Log: log}}
	user := config.User{Addr: address.Address{Local: "alice", Domain: "example.test"}}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Session{srv: srv, user: user, authUser: "alice@example.test", log: log, cc: &clientConn{}}
		switch e := s.checkFrom(strings.NewReader(string(in))); e {
		case nil, errBadFrom, errFromNotOwned:
		default:
			t.Fatalf("checkFrom(%q) = %v", in, e)
		}
	})
}
