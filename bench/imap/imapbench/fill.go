package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// SearchNeedle is in the Subject of about one message in 200 (see subject).
const SearchNeedle = "budget review"

var (
	firstNames = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan",
		"Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
		"Zoë", "Jürgen", "Søren", "Chloé", "Łukasz", "Mei", "Arjun", "Fatima", "Kenji", "Lars", "Priya"}
	lastNames = []string{"Smith", "Jones", "Müller", "Dubois", "García", "Rossi", "Nowak", "Tanaka",
		"Olsen", "Kowalski", "Fischer", "Martin", "Silva", "Brown", "Wilson", "Novak", "Berg"}
	domains = []string{"example.net", "example.org", "mail.example.com", "lists.example.org",
		"corp.example", "univ.example.edu", "shop.example", "news.example.net"}
	words = []string{"meeting", "notes", "project", "update", "invoice", "weekly", "report", "draft",
		"release", "plan", "question", "about", "the", "new", "server", "migration", "lunch",
		"tomorrow", "schedule", "review", "contract", "travel", "photos", "party", "agenda",
		"minutes", "patch", "bug", "ticket", "customer", "feedback", "budget", "quarterly", "team"}
	prefixes = []string{"", "", "", "Re: ", "Re: ", "Fwd: ", "RE: ", "[list] ", "Re: [list] "}
	lorem    = []string{"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
		"sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna",
		"aliqua", "enim", "ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco",
		"laboris", "nisi", "aliquip", "ex", "ea", "commodo", "consequat"}
)

// fill writes n messages into DIR/cur (DIR/new and DIR/tmp are created
// empty), named as pkg/maildir names them, with ,S= and ,W= size hints and
// an info part (":2," and flags, most of them \Seen), and with each file's
// mtime at its delivery time. Deterministic for a given -seed.
func fill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	dir := fs.String("dir", "", "Maildir to create and fill")
	n := fs.Int("n", 100000, "messages")
	seed := fs.Uint64("seed", 1, "random seed")
	workers := fs.Int("workers", 4, "parallel writers")
	_ = fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("fill: -dir is required")
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(*dir, sub), 0o700); err != nil {
			return err
		}
	}
	base := time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC).Unix()
	jobs := make(chan int, 256)
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := writeMessage(*dir, i, base, *seed); err != nil {
					errs <- err
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for i := range *n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return nil
}

// writeMessage makes message i; its random source depends only on (seed, i).
func writeMessage(dir string, i int, base int64, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	secs := base + int64(i)*300 + r.Int64N(300) // one message every ~5 min, in order
	usec := r.IntN(1000000)
	msg := message(r, i, time.Unix(secs, int64(usec)*1000))
	lf := bytes.Count(msg, []byte{'\n'})
	flags := "S"
	switch x := r.IntN(100); {
	case x < 8:
		flags = ""
	case x < 12:
		flags = "RS"
	case x < 14:
		flags = "FS"
	}
	name := fmt.Sprintf("%d.M%dP%dQ%d.bench.example,S=%d,W=%d:2,%s",
		secs, usec, 4000+i%3000, i+1, len(msg), len(msg)+lf, flags)
	p := filepath.Join(dir, "cur", name)
	if err := os.WriteFile(p, msg, 0o600); err != nil {
		return err
	}
	t := time.Unix(secs, 0)
	return os.Chtimes(p, t, t)
}

func pick(r *rand.Rand, l []string) string { return l[r.IntN(len(l))] }

func person(r *rand.Rand) (name, addr string) {
	f, l := pick(r, firstNames), pick(r, lastNames)
	initial := lowerASCII(f)
	if initial == "" {
		initial = "x"
	}
	return f + " " + l, fmt.Sprintf("%s.%s%d@%s", initial[:1], lowerASCII(l), r.IntN(50), pick(r, domains))
}

func lowerASCII(s string) string {
	b := []byte{}
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+32)
		case c >= 'a' && c <= 'z':
			b = append(b, c)
		}
	}
	return string(b)
}

func subject(r *rand.Rand) string {
	var b bytes.Buffer
	b.WriteString(pick(r, prefixes))
	k := 2 + r.IntN(6)
	for j := range k {
		if j > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pick(r, words))
	}
	if r.IntN(200) == 0 {
		b.WriteString(" - Q3 " + SearchNeedle)
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, " #%d", r.IntN(10000))
	}
	return b.String()
}

// header encodes a display name as RFC 2047 when it is not ASCII.
func displayName(n string) string {
	for _, c := range []byte(n) {
		if c >= 0x80 {
			return "=?UTF-8?B?" + b64(n) + "?="
		}
	}
	return `"` + n + `"`
}

func paragraph(r *rand.Rand, b *bytes.Buffer, size int) {
	col := 0
	for b.Len() < size {
		w := pick(r, lorem)
		if col+len(w)+1 > 72 {
			b.WriteByte('\n')
			col = 0
			if r.IntN(6) == 0 {
				b.WriteByte('\n')
			}
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteByte('\n')
}

// message builds an RFC 5322 message with LF line endings (as mailsrv's
// deliver stores them): about 70% text/plain, 20% multipart/alternative,
// 10% multipart/mixed with a small base64 attachment; bodies of 0.5-6 KB.
func message(r *rand.Rand, i int, date time.Time) []byte {
	var b bytes.Buffer
	fromName, from := person(r)
	toName, _ := person(r)
	fmt.Fprintf(&b, "Return-Path: <%s>\n", from)
	fmt.Fprintf(&b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mx.example.test with ESMTPS id %08X\n\tfor <demo@example.test>; %s\n",
		r.IntN(9), pick(r, domains), r.IntN(9), pick(r, domains), 1+r.IntN(250), r.Uint32(), date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s <%s>\n", displayName(fromName), from)
	fmt.Fprintf(&b, "To: %s <demo@example.test>\n", displayName(toName))
	if r.IntN(4) == 0 {
		cn, ca := person(r)
		fmt.Fprintf(&b, "Cc: %s <%s>\n", displayName(cn), ca)
	}
	fmt.Fprintf(&b, "Subject: %s\n", subject(r))
	fmt.Fprintf(&b, "Date: %s\n", date.In(time.FixedZone("", 3600*(r.IntN(13)-6))).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%08x@%s>\n", i, r.Uint32(), pick(r, domains))
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, "In-Reply-To: <%d.%08x@%s>\n", r.IntN(i+1), r.Uint32(), pick(r, domains))
	}
	b.WriteString("MIME-Version: 1.0\n")
	size := 500 + r.IntN(5500)
	switch x := r.IntN(10); {
	case x < 7:
		b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
		paragraph(r, &b, b.Len()+size)
	case x < 9:
		bd := fmt.Sprintf("=-alt-%08x", r.Uint32())
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\n\n", bd)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\n\n", bd)
		paragraph(r, &b, b.Len()+size/2)
		fmt.Fprintf(&b, "\n--%s\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>\n", bd)
		paragraph(r, &b, b.Len()+size/2)
		fmt.Fprintf(&b, "</p></body></html>\n\n--%s--\n", bd)
	default:
		bd := fmt.Sprintf("=-mix-%08x", r.Uint32())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", bd)
		fmt.Fprintf(&b, "--%s\nContent-Type: text/plain; charset=utf-8\n\n", bd)
		paragraph(r, &b, b.Len()+size/2)
		fmt.Fprintf(&b, "\n--%s\nContent-Type: application/octet-stream; name=\"data%d.bin\"\nContent-Disposition: attachment; filename=\"data%d.bin\"\nContent-Transfer-Encoding: base64\n\n", bd, i, i)
		raw := make([]byte, size/2)
		for j := range raw {
			raw[j] = byte(r.Uint32())
		}
		enc := b64(string(raw))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\n\n--" + bd + "--\n")
	}
	return b.Bytes()
}
