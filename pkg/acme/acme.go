// Package acme obtains and renews certificates from an ACME certificate
// authority (RFC 8555; Let's Encrypt and others) with the http-01
// challenge, and saves them where pkg/tlsconf serves them from
// (ROOT/etc/tls/NAME.crt and NAME.key), so every daemon picks the new
// certificate up without a restart. The account key is kept in
// ROOT/etc/tls/acme/account.key.
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"mailsrv/pkg/safefile"
	"mailsrv/pkg/tlsconf"
)

// LetsEncrypt is the default directory.
const LetsEncrypt = acme.LetsEncryptURL

// Options says what to obtain and how.
type Options struct {
	Root        string        // mailsrv root
	Directory   string        // ACME directory URL
	Email       string        // contact for the account, optional
	Names       []string      // DNS names; the first names the files
	HTTPAddr    string        // where to answer http-01 (":80")
	RenewBefore time.Duration // Renew: obtain again when fewer days are left
	HTTPClient  *http.Client  // for a private CA (tests); nil for the default
}

// Renew obtains a certificate when the saved one is missing, does not
// cover every name, or expires within RenewBefore. It reports whether it
// obtained one. Run it daily from cron or a timer.
func Renew(ctx context.Context, o Options) (bool, error) {
	if len(o.Names) == 0 {
		return false, errors.New("acme: no names")
	}
	crt := filepath.Join(o.Root, tlsconf.Dir, o.Names[0]+".crt")
	if leaf, err := readLeaf(crt); err == nil && covers(leaf, o.Names) &&
		time.Until(leaf.NotAfter) > o.RenewBefore {
		slog.Info("acme: certificate still valid", "file", crt, "not_after", leaf.NotAfter)
		return false, nil
	}
	return true, Obtain(ctx, o)
}

// Obtain runs one ACME order for o.Names and saves the result.
func Obtain(ctx context.Context, o Options) error {
	key, err := accountKey(o.Root)
	if err != nil {
		return err
	}
	c := &acme.Client{Key: key, DirectoryURL: o.Directory, HTTPClient: o.HTTPClient, UserAgent: "mailsrv"}
	acct := &acme.Account{}
	if o.Email != "" {
		acct.Contact = []string{"mailto:" + o.Email}
	}
	if _, err := c.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("acme: register: %w", err)
	}
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(o.Names...))
	if err != nil {
		return fmt.Errorf("acme: new order: %w", err)
	}
	srv, err := startHTTP01(o.HTTPAddr, c)
	if err != nil {
		return err
	}
	defer srv.stop()
	for _, u := range order.AuthzURLs {
		if err := authorize(ctx, c, srv, u); err != nil {
			return err
		}
	}
	if order, err = c.WaitOrder(ctx, order.URI); err != nil {
		return fmt.Errorf("acme: order: %w", err)
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: o.Names[0]}, DNSNames: o.Names}, certKey)
	if err != nil {
		return err
	}
	chain, _, err := c.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return fmt.Errorf("acme: finalize: %w", err)
	}
	return save(o.Root, o.Names[0], certKey, chain)
}

func authorize(ctx context.Context, c *acme.Client, srv *http01, url string) error {
	z, err := c.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("acme: authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	var chal *acme.Challenge
	for _, ch := range z.Challenges {
		if ch.Type == "http-01" {
			chal = ch
		}
	}
	if chal == nil {
		return fmt.Errorf("acme: %s offers no http-01 challenge", z.Identifier.Value)
	}
	resp, err := c.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		return err
	}
	srv.set(c.HTTP01ChallengePath(chal.Token), resp)
	if _, err := c.Accept(ctx, chal); err != nil {
		return fmt.Errorf("acme: accept challenge: %w", err)
	}
	if _, err := c.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("acme: %s: %w", z.Identifier.Value, err)
	}
	slog.Info("acme: authorized", "name", z.Identifier.Value)
	return nil
}

// http01 answers the challenges of one order.
type http01 struct {
	mu    sync.Mutex
	paths map[string]string
	srv   *http.Server
}

func startHTTP01(addr string, c *acme.Client) (*http01, error) {
	if addr == "" {
		addr = ":80"
	}
	h := &http01{paths: map[string]string{}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("acme: http-01 listener: %w", err)
	}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *http01) set(path, body string) {
	h.mu.Lock()
	h.paths[path] = body
	h.mu.Unlock()
}

func (h *http01) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	body, ok := h.paths[r.URL.Path]
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(body))
}

func (h *http01) stop() { _ = h.srv.Close() }

// accountKey loads or makes the account key.
func accountKey(root string) (crypto.Signer, error) {
	path := filepath.Join(root, tlsconf.Dir, "acme", "account.key")
	if data, err := os.ReadFile(path); err == nil {
		b, _ := pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("acme: %s: not PEM", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acme: %s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("acme: %s: not a signing key", path)
		}
		return s, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0700); err != nil {
		return nil, err
	}
	return k, safefile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0600)
}

// save writes the key, then the chain, so no reader sees a certificate
// without its key.
func save(root, name string, key *ecdsa.PrivateKey, chain [][]byte) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	var pemChain []byte
	for _, c := range chain {
		pemChain = append(pemChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	if _, err := tls.X509KeyPair(pemChain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return fmt.Errorf("acme: the CA's certificate does not match our key: %w", err)
	}
	base := filepath.Join(root, tlsconf.Dir, name)
	if err := os.MkdirAll(filepath.Dir(base), 0755); err != nil {
		return err
	}
	if err := safefile.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), tlsconf.KeyPerm(filepath.Dir(base))); err != nil {
		return err
	}
	if err := safefile.WriteFile(base+".crt", pemChain, 0644); err != nil {
		return err
	}
	slog.Info("acme: certificate saved", "file", base+".crt")
	return nil
}

func readLeaf(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if leaf.VerifyHostname(strings.TrimSuffix(n, ".")) != nil {
			return false
		}
	}
	return true
}
