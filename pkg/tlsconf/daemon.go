package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// ForDaemon is how every daemon decides about TLS at start: with a
// certificate in ROOT/etc/tls it returns a configuration (STARTTLS, STLS
// and --tls are offered); without one it returns nil, nil, so the plain
// protocol runs without the upgrade, unless implicit (--tls) is set, which
// then is an error. hostname picks the default certificate.
func ForDaemon(root, hostname string, implicit bool) (*tls.Config, error) {
	store := NewStore(root, hostname)
	err := store.Load()
	switch {
	case err == nil:
		return store.Config(), nil
	case implicit:
		return nil, fmt.Errorf("--tls: %w", err)
	case errors.Is(err, ErrNoCertificate):
		return nil, nil
	}
	return nil, err
}
