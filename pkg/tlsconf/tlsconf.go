// Package tlsconf owns the server side of TLS for every mailsrv daemon:
// certificates and keys as PEM files under ROOT/etc/tls/ (NAME.crt beside
// NAME.key), chosen by SNI, picked up again when the files change, with
// TLS 1.2 as the floor and Go's modern defaults otherwise. It also makes
// self-signed certificates for tests and `make run`.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Dir is the certificate directory, relative to the root.
const Dir = "etc/tls"

// ErrNoCertificate is returned when etc/tls holds no usable pair.
var ErrNoCertificate = errors.New("no certificate in " + Dir)

// recheck is how often the directory is looked at again for changes.
const recheck = 2 * time.Second

// Store serves the certificates of one directory.
type Store struct {
	dir      string
	fallback string // host name whose certificate is the default

	mu      sync.Mutex
	checked time.Time
	stamp   string
	certs   []*tls.Certificate
}

// NewStore returns a store for ROOT/etc/tls. hostname (etc/me) picks the
// default certificate for clients that send no SNI or an unknown name.
func NewStore(root, hostname string) *Store {
	return &Store{dir: filepath.Join(root, Dir), fallback: strings.ToLower(hostname)}
}

// Config returns a server configuration that looks certificates up in the
// store at each handshake.
func (s *Store) Config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
	}
}

// Load reads the directory now, so that a daemon can refuse to start with
// --tls and no certificate instead of failing each handshake.
func (s *Store) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(true); err != nil {
		return err
	}
	if len(s.certs) == 0 {
		return ErrNoCertificate
	}
	return nil
}

// GetCertificate picks the certificate for a handshake by SNI.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(false); err != nil {
		slog.Error("tls certificates", "dir", s.dir, "err", err)
	}
	if len(s.certs) == 0 {
		return nil, ErrNoCertificate
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		name = s.fallback
	}
	if c := match(s.certs, name); c != nil {
		return c, nil
	}
	if c := match(s.certs, s.fallback); c != nil {
		return c, nil
	}
	return s.certs[0], nil
}

func match(certs []*tls.Certificate, name string) *tls.Certificate {
	for _, c := range certs {
		if c.Leaf != nil && c.Leaf.VerifyHostname(name) == nil {
			return c
		}
	}
	return nil
}

// refresh reloads the pairs when the directory's listing, sizes or times
// changed. A pair that does not load is logged and skipped; the others,
// and the previous set if none loads, keep serving.
func (s *Store) refresh(force bool) error {
	if !force && time.Since(s.checked) < recheck {
		return nil
	}
	s.checked = time.Now()
	stamp, pairs, err := scan(s.dir)
	if err != nil {
		return err
	}
	if !force && stamp == s.stamp {
		return nil
	}
	var certs []*tls.Certificate
	for _, base := range pairs {
		c, err := tls.LoadX509KeyPair(base+".crt", base+".key")
		if err == nil && c.Leaf == nil {
			c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
		}
		if err != nil {
			slog.Error("tls certificate skipped", "file", base+".crt", "err", err)
			continue
		}
		certs = append(certs, &c)
	}
	if len(certs) == 0 && len(s.certs) > 0 {
		return fmt.Errorf("%s: no pair loads; keeping the previous certificates", s.dir)
	}
	s.stamp, s.certs = stamp, certs
	return nil
}

// scan lists NAME.crt files that have a NAME.key, with a stamp of their
// names, sizes and modification times.
func scan(dir string) (string, []string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var pairs []string
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
		if base, ok := strings.CutSuffix(e.Name(), ".crt"); ok {
			if _, err := os.Stat(filepath.Join(dir, base+".key")); err == nil {
				pairs = append(pairs, filepath.Join(dir, base))
			}
		}
	}
	sort.Strings(pairs)
	return b.String(), pairs, nil
}
