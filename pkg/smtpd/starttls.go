package smtpd

import (
	"bytes"
)

// startTLSReply is the reply with which go-smtp accepts STARTTLS; it
// writes it in one piece just before the handshake, and nowhere else.
var startTLSReply = []byte("220 2.0.0 Ready to start TLS\r\n")

// Write watches for go-smtp's reply to STARTTLS. A client may not send
// anything after STARTTLS before it has read that reply (RFC 3207 section
// 4, RFC 2920 section 3.1), so whatever we have already read past the
// STARTTLS line was sent in clear text by the client or injected by a
// man in the middle. Were it left in the buffer, the TLS handshake would
// read it; in servers that kept their command buffer across the
// handshake it was executed as if it came over TLS (CVE-2011-0411). We
// drop it, log it, and from then on hand out TLS records unsplit.
func (c *clientConn) Write(p []byte) (int, error) {
	if !c.tls && c.br != nil && bytes.Equal(p, startTLSReply) {
		c.tls = true
		if n := c.br.Buffered(); n > 0 {
			if _, err := c.br.Discard(n); err != nil {
				return 0, err
			}
			c.log.Warn("discarded input pipelined after STARTTLS", "client", c.ip, "octets", n)
		}
	}
	return c.Conn.Write(p)
}
