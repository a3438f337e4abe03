package admin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"mailsrv/pkg/config"
	"mailsrv/pkg/privsep"
	"mailsrv/pkg/queue"
)

// InitSystem prepares an initialised root for least privilege (mailctl
// init --system, as root): it creates the group mailsrv and the accounts
// mailsrv-smtpd, mailsrv-queue and mailsrv-mail (each with its own group,
// and a member of mailsrv) when they are missing, then sets owners and
// modes so that
//
//   - smtpd can read neither a mailbox nor etc/users (it asks mailctl
//     auth-helper, run as mailsrv-mail);
//   - only the queue program, set-group-ID mailsrv-queue, can put a file
//     into the queue, and only mailsrv-queue can read the queue;
//   - mail/ and everything below it belongs to mailsrv-mail, the account
//     deliver, imapd and pop3d run as; etc/users is readable by its group;
//   - etc/tls is readable by the group mailsrv, and run/throttle writable
//     by it (the login throttle of the three daemons).
//
// It is idempotent. queueProg is the queue program to make set-group-ID
// ("" leaves it alone). What it does is reported on out.
func InitSystem(root, queueProg string, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fail(ErrUsage, "init --system: must be run as root")
	}
	if err := ensureAccounts(out); err != nil {
		return fail(ErrCantCreate, "init --system: %w", err)
	}
	ids, err := systemIDs()
	if err != nil {
		return fail(ErrCantCreate, "init --system: %w", err)
	}
	if err := applyModes(root, ids); err != nil {
		return fail(ErrCantCreate, "init --system: %w", err)
	}
	if queueProg != "" {
		if err := setgidQueue(queueProg, ids.queue.GID); err != nil {
			return fail(ErrCantCreate, "init --system: %w", err)
		}
		fmt.Fprintf(out, "%s: set-group-ID %s\n", queueProg, privsep.QueueUser)
	}
	return nil
}

// ensureAccounts creates the group and accounts that are missing.
func ensureAccounts(out io.Writer) error {
	if _, err := user.LookupGroup(privsep.Group); err != nil {
		if err := run("groupadd", "--system", privsep.Group); err != nil {
			return err
		}
		fmt.Fprintf(out, "group %s created\n", privsep.Group)
	}
	for _, name := range []string{privsep.SMTPDUser, privsep.QueueUser, privsep.MailUser} {
		if _, err := user.Lookup(name); err == nil {
			if err := run("usermod", "--append", "--groups", privsep.Group, name); err != nil {
				return err
			}
			continue
		}
		if err := run("useradd", "--system", "--user-group", "--groups", privsep.Group,
			"--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name); err != nil {
			return err
		}
		fmt.Fprintf(out, "account %s created\n", name)
	}
	return nil
}

func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", argv[0], err, out)
	}
	return nil
}

type systemAccounts struct {
	smtpd, queue, mail privsep.Account
	group              int
}

func systemIDs() (systemAccounts, error) {
	var ids systemAccounts
	var err error
	if ids.smtpd, err = privsep.Lookup(privsep.SMTPDUser); err != nil {
		return ids, err
	}
	if ids.queue, err = privsep.Lookup(privsep.QueueUser); err != nil {
		return ids, err
	}
	if ids.mail, err = privsep.Lookup(privsep.MailUser); err != nil {
		return ids, err
	}
	g, err := user.LookupGroup(privsep.Group)
	if err != nil {
		return ids, err
	}
	ids.group, err = strconv.Atoi(g.Gid)
	return ids, err
}

// modeRule gives one path (and, with tree, everything below it) an owner,
// a group and a mode; files below a tree keep their modes.
type modeRule struct {
	rel      string
	uid, gid int
	mode     fs.FileMode
	fileMode fs.FileMode // with tree: the mode of the files below, 0 keeps theirs
	tree     bool
	mkdir    bool
}

func applyModes(root string, ids systemAccounts) error {
	cfg := config.Open(root)
	qd, err := filepath.Rel(root, cfg.QueueDir())
	if err != nil {
		return err
	}
	q := func(sub string) string { return filepath.Join(qd, sub) }
	rules := []modeRule{
		{rel: ".", mode: 0o755},
		{rel: "etc", mode: 0o755},
		{rel: config.FileMe, mode: 0o644},
		{rel: config.FileDomains, mode: 0o644},
		{rel: config.FileAliases, mode: 0o644},
		{rel: config.FileUsers, gid: ids.mail.GID, mode: 0o640},
		// Set-group-ID: new keys take the group (tlsconf.KeyPerm).
		{rel: "etc/tls", gid: ids.group, mode: 0o750 | fs.ModeSetgid, fileMode: 0o640, tree: true, mkdir: true},
		{rel: "mail", uid: ids.mail.UID, gid: ids.mail.GID, mode: 0o700, tree: true},
		{rel: qd, uid: ids.queue.UID, gid: ids.queue.GID, mode: 0o750, tree: true},
		{rel: q(queue.DirTmp), uid: ids.queue.UID, gid: ids.queue.GID, mode: 0o770},
		{rel: q(queue.DirIncoming), uid: ids.queue.UID, gid: ids.queue.GID, mode: 0o770},
		{rel: q(queue.DirActive), uid: ids.queue.UID, gid: ids.queue.GID, mode: 0o700},
		{rel: q(queue.DirState), uid: ids.queue.UID, gid: ids.queue.GID, mode: 0o700},
		{rel: q(queue.FileTrigger), uid: ids.queue.UID, gid: ids.queue.GID, mode: 0o620},
		{rel: "run", mode: 0o755, mkdir: true},
		{rel: "run/throttle", gid: ids.group, mode: 0o770 | fs.ModeSetgid, tree: true, mkdir: true},
	}
	for _, r := range rules {
		if err := r.apply(root); err != nil {
			return err
		}
	}
	return nil
}

func (r modeRule) apply(root string) error {
	p := filepath.Join(root, r.rel)
	if r.mkdir {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if r.tree {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := os.Lchown(path, r.uid, r.gid); err != nil {
				return err
			}
			if r.fileMode != 0 && d.Type().IsRegular() {
				return os.Chmod(path, r.fileMode)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := os.Lchown(p, r.uid, r.gid); err != nil {
		return err
	}
	return os.Chmod(p, r.mode)
}

// setgidQueue makes the queue program set-group-ID mailsrv-queue, as
// qmail-queue is set-user-ID qmailq: the one way into the queue.
func setgidQueue(prog string, gid int) error {
	if err := os.Chown(prog, 0, gid); err != nil {
		return err
	}
	return os.Chmod(prog, 0o755|fs.ModeSetgid)
}

// ownLikeMailDir gives box, a mailbox made by root (mailctl user add),
// and the directories between it and mail/ the owner of mail/, so that
// under --system it belongs to mailsrv-mail. Elsewhere it changes nothing.
func ownLikeMailDir(mailDir, box string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(mailDir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	for d := filepath.Dir(box); len(d) > len(mailDir); d = filepath.Dir(d) {
		if err := os.Lchown(d, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return filepath.WalkDir(box, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}
