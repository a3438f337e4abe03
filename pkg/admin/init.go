package admin

import (
	"mailsrv/pkg/address"
	"mailsrv/pkg/config"
	"mailsrv/pkg/queue"
)

// Init creates the layout of a new root for host: etc/ with its control
// files, mail/ and the queue. It is idempotent, and never overwrites a
// file: if etc/me already names another host it fails with ErrCantCreate.
func Init(root, host string) error {
	if _, err := address.ParseDomain(host); err != nil {
		return fail(ErrData, "host name %q: %w", host, err)
	}
	if err := config.Init(root, host); err != nil {
		return fail(ErrCantCreate, "init %s: %w", root, err)
	}
	cfg := config.Open(root)
	if err := queue.Create(cfg.QueueDir()); err != nil {
		return fail(ErrCantCreate, "init %s: queue: %w", root, err)
	}
	return nil
}
