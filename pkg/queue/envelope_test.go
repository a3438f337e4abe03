package queue

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"mailsrv/pkg/address"
)

func mustAddr(t testing.TB, s string) address.Address {
	t.Helper()
	a, err := address.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestEnvelopeRoundTrip(t *testing.T) {
	env := &Envelope{
		From:     mustAddr(t, "sender@example.org"),
		To:       []Recipient{{Addr: mustAddr(t, "a@example.test")}, {Addr: mustAddr(t, "b@example.test"), Orig: "B@Example.test"}},
		Received: time.Date(2026, 11, 26, 10, 0, 0, 5, time.UTC),
		Client:   "192.0.2.1", Helo: "mail\r\nevil", Auth: "u@example.test", Proto: "ESMTPA",
		Extra: []string{"x-future something"},
	}
	var b bytes.Buffer
	if _, err := env.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("Subject: x\n\nbody\n")
	br := bufio.NewReader(&b)
	got, err := ReadEnvelope(br)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := br.ReadString(0)
	if rest != "Subject: x\n\nbody\n" {
		t.Errorf("message after envelope: %q", rest)
	}
	if got.From != env.From || len(got.To) != 2 || got.To[1].Orig != "B@Example.test" ||
		!got.Received.Equal(env.Received) || got.Helo != "mail??evil" || got.Auth != env.Auth ||
		got.Proto != "ESMTPA" || len(got.Extra) != 1 || got.Extra[0] != "x-future something" {
		t.Errorf("round trip: got %+v", got)
	}
}

func TestEnvelopeNullSender(t *testing.T) {
	env := &Envelope{To: []Recipient{{Addr: mustAddr(t, "a@example.test")}}}
	var b bytes.Buffer
	if _, err := env.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEnvelope(bufio.NewReader(&b))
	if err != nil || !got.From.IsNull() {
		t.Fatalf("null sender: %v %+v", err, got)
	}
}

func TestReadEnvelopeErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"mailsrv-queue 2\nfrom a@b\nto c@d\n\n",
		Magic + "\nfrom a@b\n\n",       // no recipients
		Magic + "\nfrom a@b\nto c@d\n", // not terminated
		Magic + "\nfrom a@b\nto not an address\n\n", // bad recipient
		Magic + "\nfrom a@b\nto c@d\nreceived yesterday\n\n",
		Magic + "\n" + strings.Repeat("x-pad "+strings.Repeat("y", 1000)+"\n", 1100) + "to c@d\n\n",
	} {
		if _, err := ReadEnvelope(bufio.NewReader(strings.NewReader(in))); !errors.Is(err, ErrFormat) {
			t.Errorf("%.60q: err %v, want ErrFormat", in, err)
		}
	}
}

func TestReadQmailEnvelope(t *testing.T) {
	var env Envelope
	if err := ReadQmailEnvelope(strings.NewReader("Fa@b.test\x00Tc@d.test\x00Te@f.test\x00\x00"), &env); err != nil {
		t.Fatal(err)
	}
	if env.From.String() != "a@b.test" || len(env.To) != 2 || env.To[1].Addr.String() != "e@f.test" {
		t.Errorf("got %+v", env)
	}
	for _, in := range []string{"", "F\x00\x00", "Xa@b\x00Tc@d\x00\x00", "Fa@b\x00Tc@d\x00", "F\x00Tnot-an-address\x00\x00"} {
		var e Envelope
		if err := ReadQmailEnvelope(strings.NewReader(in), &e); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// FuzzReadEnvelope: whatever a queue file holds, reading it returns an
// envelope or an error, and an envelope it returns writes back to one that
// reads the same.
func FuzzReadEnvelope(f *testing.F) {
	f.Add([]byte(Magic + "\nfrom a@b.test\nto c@d.test\torcpt=C@d.test\nreceived 2026-11-26T10:00:00Z\nclient 1.2.3.4\n\nbody"))
	f.Add([]byte(Magic + "\nfrom \nto \"x y\"@d.test\nx-new 1\n\n"))
	f.Add([]byte("Fa@b\x00Tc@d\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ReadEnvelope(bufio.NewReader(bytes.NewReader(data)))
		var qe Envelope
		_ = ReadQmailEnvelope(bytes.NewReader(data), &qe)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if _, err := env.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		again, err := ReadEnvelope(bufio.NewReader(&b))
		if err != nil {
			t.Fatalf("rewritten envelope does not read back: %v\n%q", err, b.String())
		}
		if again.From != env.From || len(again.To) != len(env.To) {
			t.Fatalf("round trip changed the envelope: %+v vs %+v", env, again)
		}
	})
}
