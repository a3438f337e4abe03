package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mailsrv/pkg/acme"
	"mailsrv/pkg/tlsconf"
)

// SelfSigned writes a self-signed certificate for names into etc/tls.
func (a *Admin) SelfSigned(names []string, valid time.Duration) (string, error) {
	if len(names) == 0 {
		return "", Usagef("tls selfsigned: name at least one host")
	}
	path, err := tlsconf.SelfSigned(a.Cfg.Root, names, valid)
	if err != nil {
		return "", fail(ErrCantCreate, "tls selfsigned: %w", err)
	}
	return path, nil
}

// ACME obtains or renews a certificate for o.Names (see pkg/acme).
func (a *Admin) ACME(ctx context.Context, o acme.Options) (bool, error) {
	if len(o.Names) == 0 {
		return false, Usagef("tls acme: name at least one host")
	}
	o.Root = a.Cfg.Root
	return acme.Renew(ctx, o)
}

// CertInfo describes one certificate in etc/tls.
type CertInfo struct {
	File     string
	Names    []string
	NotAfter time.Time
	Issuer   string
}

// Certificates lists the certificates in etc/tls.
func (a *Admin) Certificates() ([]CertInfo, error) {
	dir := filepath.Join(a.Cfg.Root, tlsconf.Dir)
	paths, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []CertInfo
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		b, _ := pem.Decode(data)
		if b == nil {
			out = append(out, CertInfo{File: p, Issuer: "(not PEM)"})
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			out = append(out, CertInfo{File: p, Issuer: fmt.Sprintf("(unreadable: %v)", err)})
			continue
		}
		names := append([]string{}, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		out = append(out, CertInfo{File: p, Names: names, NotAfter: c.NotAfter,
			Issuer: strings.Join(c.Issuer.Organization, ",") + " " + c.Issuer.CommonName})
	}
	return out, nil
}
