package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"mailsrv/pkg/auth"
)

// ScramLookup starts the login of a user name: it returns the keys to
// check the proof against (made-up ones for an unknown user) and a finish
// function the mechanism calls once with the outcome of the proof; finish
// returns the error of the login (nil, auth.ErrMismatch, ...). An error
// from ScramLookup itself (auth.ErrThrottled) ends the exchange.
type ScramLookup func(username string) (keys auth.ScramKeys, finish func(proofOK bool) error, err error)

// scram is the server side of SCRAM-SHA-256, RFC 5802 section 5 with
// SHA-256 (RFC 7677). It offers no channel binding (we advertise only
// SCRAM-SHA-256, not -PLUS).
type scram struct {
	lookup ScramLookup
	nonce  func() string // the server's part of the nonce; tests fix it
	step   int           // 0 want client-first, 1 want client-final, 2 want empty, 3 done

	gs2Header       string // "n,," or "y,," with any a=
	clientFirstBare string
	serverFirst     string
	nonceAll        string // client nonce + server nonce
	keys            auth.ScramKeys
	finish          func(bool) error
	asked           bool
}

// NewScramSHA256 returns a SCRAM-SHA-256 server.
func NewScramSHA256(lookup ScramLookup) Mechanism {
	return &scram{lookup: lookup, nonce: randomNonce}
}

func randomNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return base64.RawStdEncoding.EncodeToString(b)
}

func (m *scram) Next(resp []byte) ([]byte, bool, error) {
	if len(resp) > MaxResponse {
		m.fail()
		return nil, true, ErrTooLong
	}
	switch m.step {
	case 0:
		if resp == nil && !m.asked {
			m.asked = true
			return []byte{}, false, nil
		}
		return m.clientFirst(string(resp))
	case 1:
		return m.clientFinal(string(resp))
	case 2:
		// RFC 4422 section 3: the server-final message went as a
		// challenge; the client answers it with an empty response.
		m.step = 3
		if len(resp) != 0 {
			return nil, true, ErrUnexpected
		}
		return nil, true, nil
	}
	return nil, true, ErrUnexpected
}

// fail ends the exchange, counting it as a failed login if it had started.
func (m *scram) fail() {
	if m.finish != nil && m.step < 2 {
		_ = m.finish(false)
	}
	m.step = 3
}

// clientFirst reads gs2-header client-first-bare (RFC 5802 section 7):
// "n,[a=authzid],n=user,r=nonce[,ext]" and answers server-first-message
// "r=nonce,s=salt,i=iter".
func (m *scram) clientFirst(msg string) ([]byte, bool, error) {
	m.step = 3
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, true, fmt.Errorf("%w: no gs2 header", ErrSyntax)
	}
	switch {
	case flag == "n", flag == "y": // no channel binding; "y": client could, thinks we cannot
	case strings.HasPrefix(flag, "p="):
		return nil, true, fmt.Errorf("%w: channel binding is not offered", ErrSyntax)
	default:
		return nil, true, fmt.Errorf("%w: gs2 flag", ErrSyntax)
	}
	authzField, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, true, fmt.Errorf("%w: gs2 header", ErrSyntax)
	}
	attrs, err := scramAttrs(bare)
	if err != nil {
		return nil, true, err
	}
	if len(attrs) < 2 || attrs[0].key != 'n' || attrs[1].key != 'r' {
		return nil, true, fmt.Errorf("%w: want n=USER,r=NONCE", ErrSyntax)
	}
	for _, a := range attrs[2:] {
		if a.key == 'm' { // mandatory extension we do not know: section 5.1
			return nil, true, fmt.Errorf("%w: unsupported mandatory extension", ErrSyntax)
		}
	}
	user, err := decodeSaslname(attrs[0].val)
	if err != nil || user == "" {
		return nil, true, fmt.Errorf("%w: user name", ErrSyntax)
	}
	if authzField != "" {
		authz, found := strings.CutPrefix(authzField, "a=")
		if !found {
			return nil, true, fmt.Errorf("%w: authzid", ErrSyntax)
		}
		if a, err := decodeSaslname(authz); err != nil || a != user {
			return nil, true, ErrAuthzid
		}
	}
	cnonce := attrs[1].val
	if !validNonce(cnonce) {
		return nil, true, fmt.Errorf("%w: nonce", ErrSyntax)
	}
	keys, finish, err := m.lookup(user)
	if err != nil {
		return nil, true, err
	}
	m.gs2Header = flag + "," + authzField + ","
	m.clientFirstBare = bare
	m.nonceAll = cnonce + m.nonce()
	m.keys, m.finish = keys, finish
	m.serverFirst = "r=" + m.nonceAll + ",s=" + base64.StdEncoding.EncodeToString(keys.Salt) +
		",i=" + strconv.Itoa(keys.Iter)
	m.step = 1
	return []byte(m.serverFirst), false, nil
}

// clientFinal reads "c=cbind,r=nonce[,ext],p=proof" (RFC 5802 section 7),
// checks the proof (section 3) and answers "v=ServerSignature".
func (m *scram) clientFinal(msg string) ([]byte, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		m.fail()
		return nil, true, fmt.Errorf("%w: no proof", ErrSyntax)
	}
	withoutProof := msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	attrs, aerr := scramAttrs(withoutProof)
	switch {
	case err != nil || len(proof) != sha256.Size:
		err = fmt.Errorf("%w: proof", ErrSyntax)
	case aerr != nil:
		err = aerr
	case len(attrs) < 2 || attrs[0].key != 'c' || attrs[1].key != 'r':
		err = fmt.Errorf("%w: want c=..,r=..,p=..", ErrSyntax)
	case attrs[0].val != base64.StdEncoding.EncodeToString([]byte(m.gs2Header)):
		err = fmt.Errorf("%w: channel binding data differs from the gs2 header", ErrSyntax)
	case attrs[1].val != m.nonceAll:
		err = fmt.Errorf("%w: nonce differs", ErrSyntax)
	}
	if err != nil {
		m.fail()
		return nil, true, err
	}
	authMessage := m.clientFirstBare + "," + m.serverFirst + "," + withoutProof
	clientSig := hmacSHA256(m.keys.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, clientSig)
	storedKey := sha256.Sum256(clientKey)
	ok := subtle.ConstantTimeCompare(storedKey[:], m.keys.StoredKey) == 1
	m.step = 2
	if err := m.finish(ok); err != nil {
		m.step = 3
		return nil, true, err
	}
	serverSig := hmacSHA256(m.keys.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), false, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

type scramAttr struct {
	key byte
	val string
}

// scramAttrs splits "k=v,k=v": each key one ASCII letter (RFC 5802
// section 7, attr-val).
func scramAttrs(s string) ([]scramAttr, error) {
	var out []scramAttr
	for _, f := range strings.Split(s, ",") {
		if len(f) < 2 || f[1] != '=' || !(f[0] >= 'a' && f[0] <= 'z' || f[0] >= 'A' && f[0] <= 'Z') {
			return nil, fmt.Errorf("%w: attribute %.20q", ErrSyntax, f)
		}
		out = append(out, scramAttr{f[0], f[2:]})
	}
	return out, nil
}

// decodeSaslname undoes "=2C" for ',' and "=3D" for '='; any other '=' is
// an error (RFC 5802 section 5.1).
func decodeSaslname(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", ErrSyntax
		}
		i += 2
	}
	return b.String(), nil
}

// validNonce: printable ASCII except ',' (RFC 5802 section 7, printable).
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

func (m *scram) cancel() { m.fail() }
