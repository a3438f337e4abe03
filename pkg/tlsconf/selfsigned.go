package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"mailsrv/pkg/safefile"
)

// SelfSigned writes a new self-signed ECDSA P-256 certificate for names
// (the first is the subject; IP addresses become IP SANs) to
// ROOT/etc/tls/NAME.crt and NAME.key, valid for the given time. The key is
// written first, mode 0600, so a reader never finds a certificate without
// its key. It returns the certificate's path.
func SelfSigned(root string, names []string, valid time.Duration) (string, error) {
	if len(names) == 0 {
		return "", fmt.Errorf("self-signed certificate: no name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"mailsrv self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, Dir)
	if err := os.MkdirAll(dir, 0755); err != nil {
		return "", err
	}
	base := filepath.Join(dir, names[0])
	if err := safefile.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), KeyPerm(dir)); err != nil {
		return "", err
	}
	if err := safefile.WriteFile(base+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0644); err != nil {
		return "", err
	}
	return base + ".crt", nil
}

// KeyPerm is the mode of a new private key in dir: 0600, or 0640 when dir
// is set-group-ID (mailctl init --system makes etc/tls so, group mailsrv),
// where the key takes the directory's group and the daemons, which run
// under their own accounts in that group, must read it.
func KeyPerm(dir string) os.FileMode {
	if fi, err := os.Stat(dir); err == nil && fi.Mode()&os.ModeSetgid != 0 {
		return 0640
	}
	return 0600
}
