package queue

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"mailsrv/pkg/address"
)

// maxReturnedHeader bounds the part of the original message a bounce
// carries: its header only (RFC 3462 text/rfc822-headers), never the body.
const maxReturnedHeader = 64 * 1024

// bounce queues a delivery status notification (RFC 3464) for the failed
// recipients to the envelope sender. A message with the null sender is
// itself a bounce: it is never bounced again (RFC 5321 section 4.5.5), only
// logged.
func (s *Scheduler) bounce(ctx context.Context, m *message, failed []failure) error {
	if m.env.From.IsNull() {
		for _, f := range failed {
			slog.Warn("double bounce discarded", "id", m.id, "rcpt", f.rcpt.Addr, "err", f.diag)
		}
		return nil
	}
	host, err := s.Cfg.Hostname()
	if err != nil {
		return err
	}
	hdr, err := s.originalHeader(m.id)
	if err != nil {
		return err
	}
	dsn := buildDSN(host, m.env, failed, hdr, time.Now())
	env := &Envelope{From: address.Address{}, To: []Recipient{{Addr: m.env.From}}, Proto: "bounce"}
	id, err := s.Q.Inject(ctx, env, bytes.NewReader(dsn))
	if err != nil {
		return err
	}
	for _, f := range failed {
		slog.Info("bounced", "id", m.id, "rcpt", f.rcpt.Addr, "status", f.status, "bounce_id", id)
	}
	return nil
}

func (s *Scheduler) originalHeader(id string) ([]byte, error) {
	body, err := s.Q.openBody(id)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var hdr bytes.Buffer
	br := bufio.NewReader(io.LimitReader(body, maxReturnedHeader))
	for {
		line, err := br.ReadString('\n')
		if line == "\n" || line == "\r\n" {
			break
		}
		hdr.WriteString(line)
		if err != nil {
			break
		}
	}
	return hdr.Bytes(), nil
}

// buildDSN writes a multipart/report (RFC 6522) with a human-readable part,
// the message/delivery-status part (RFC 3464) and the original header.
func buildDSN(host string, env *Envelope, failed []failure, origHeader []byte, now time.Time) []byte {
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	boundary := "=_mailsrv_" + hex.EncodeToString(rb[:])
	var b bytes.Buffer
	date := now.Format(time.RFC1123Z)
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", host)
	fmt.Fprintf(&b, "To: <%s>\n", env.From.String())
	fmt.Fprintf(&b, "Subject: Undelivered Mail Returned to Sender\n")
	fmt.Fprintf(&b, "Date: %s\n", date)
	fmt.Fprintf(&b, "Message-ID: <%s.bounce@%s>\n", hex.EncodeToString(rb[:8]), host)
	fmt.Fprintf(&b, "Auto-Submitted: auto-replied\n")
	fmt.Fprintf(&b, "MIME-Version: 1.0\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n\n", boundary)
	fmt.Fprintf(&b, "This is a MIME-encapsulated message.\n\n--%s\n", boundary)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\n\n")
	fmt.Fprintf(&b, "This is the mail system at %s.\n\n", host)
	fmt.Fprintf(&b, "Your message could not be delivered to the following recipients.\n")
	fmt.Fprintf(&b, "This is a permanent error; it will not be tried again.\n\n")
	for _, f := range failed {
		fmt.Fprintf(&b, "<%s>: %s\n", f.rcpt.Orig, oneLine(f.diag))
	}
	fmt.Fprintf(&b, "\n--%s\nContent-Type: message/delivery-status\n\n", boundary)
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\n", host)
	if !env.Received.IsZero() {
		fmt.Fprintf(&b, "Arrival-Date: %s\n", env.Received.Format(time.RFC1123Z))
	}
	for _, f := range failed {
		fmt.Fprintf(&b, "\nFinal-Recipient: rfc822; %s\n", f.rcpt.Addr)
		if f.rcpt.Orig != "" && f.rcpt.Orig != f.rcpt.Addr {
			fmt.Fprintf(&b, "Original-Recipient: rfc822; %s\n", f.rcpt.Orig)
		}
		fmt.Fprintf(&b, "Action: failed\nStatus: %s\n", f.status)
		fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\n", oneLine(f.diag))
		fmt.Fprintf(&b, "Last-Attempt-Date: %s\n", date)
	}
	fmt.Fprintf(&b, "\n--%s\nContent-Type: text/rfc822-headers\n\n", boundary)
	b.Write(origHeader)
	fmt.Fprintf(&b, "\n--%s--\n", boundary)
	return b.Bytes()
}

func oneLine(s string) string {
	s = clean(s)
	if len(s) > 900 {
		s = s[:900]
	}
	return strings.TrimSpace(s)
}
