package authhelper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

// quickCheck answers checks at once: bob's password is "right". The
// protocol's handling is what FuzzServe tests, not argon2.
type quickCheck struct{ cfg *config.Config }

func (q quickCheck) Check(_ context.Context, user, pass string) (config.User, error) {
	u, found, err := q.cfg.LookupUser(strings.ToLower(user))
	if err != nil || !found || pass != "right" {
		return config.User{}, auth.ErrMismatch
	}
	return u, nil
}

// FuzzServe feeds any bytes to the service's side of the protocol, as a
// peer on the socket may send them: it must not panic, each answer is
// one JSON object on a line, there are no more answers than lines sent,
// and neither bob's hash nor his SCRAM keys are ever in an answer.
func FuzzServe(f *testing.F) {
	cfg := testRoot(f)
	u, found, err := cfg.LookupUser("bob@example.org")
	if err != nil || !found {
		f.Fatalf("bob: %v %v", found, err)
	}
	secrets := []string{u.Hash, u.Attrs[auth.AttrScramSHA256]}
	for _, seed := range []string{
		`{"op":"lookup","user":"bob@example.org"}` + "\n",
		`{"op":"check","user":"bob@example.org","password":"right"}` + "\n" + `{"op":"lookup","user":"Bob+x@example.org"}` + "\n",
		`{"op":"check","user":"bob@example.org","password":"wrong"}` + "\r\n",
		`{"op":"steal","user":"bob@example.org"}` + "\n{not json\n\n",
		`{"op":"lookup","user":"bob@example.org","user":"x"}`,
		`{"op":"check","user":"bob@example.org","password":"` + strings.Repeat("x", MaxLine) + "\"}\n",
	} {
		f.Add([]byte(seed))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		_ = serve(bytes.NewReader(in), &out, quickCheck{cfg}, cfg, log)
		lines := bytes.Count(in, []byte("\n")) + 1
		sc := bufio.NewScanner(&out)
		n := 0
		for sc.Scan() {
			n++
			var ans answer
			if err := json.Unmarshal(sc.Bytes(), &ans); err != nil {
				t.Fatalf("answer %d not JSON: %q", n, sc.Bytes())
			}
			for _, s := range secrets {
				if bytes.Contains(sc.Bytes(), []byte(s)) {
					t.Fatalf("a secret in answer %q", sc.Bytes())
				}
			}
		}
		if n > lines {
			t.Fatalf("%d answers to %d lines", n, lines)
		}
	})
}
