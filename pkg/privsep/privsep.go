// Package privsep gives up privilege: a daemon started as root looks up the
// system account it is to run as, does what needs root (binding a port,
// starting a helper under another account), then drops to that account
// before it reads a byte from the network.
//
// The accounts (see mailctl(8), init --system, and mailsrv-files(5)):
// mailsrv-smtpd runs smtpd and can read neither mailboxes nor password
// hashes; mailsrv-queue owns the queue; mailsrv-mail owns the virtual
// mailboxes and runs deliver, imapd and pop3d. All three are members of the
// group mailsrv, which may read etc/tls and write the login throttle under
// run/.
package privsep

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// The accounts and groups `mailctl init --system` creates.
const (
	SMTPDUser = "mailsrv-smtpd"
	QueueUser = "mailsrv-queue"
	MailUser  = "mailsrv-mail"
	Group     = "mailsrv" // shared: etc/tls, run/throttle
)

// Account is a system account to run as.
type Account struct {
	Name   string
	UID    int
	GID    int
	Groups []int // supplementary groups, from the group database
}

// Lookup finds the account name (a user name, or a numeric UID) and its
// groups.
func Lookup(name string) (Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return Account{}, fmt.Errorf("account %s: %w", name, err)
		}
	}
	a := Account{Name: u.Username}
	if a.UID, err = strconv.Atoi(u.Uid); err != nil {
		return Account{}, fmt.Errorf("account %s: uid %q", name, u.Uid)
	}
	if a.GID, err = strconv.Atoi(u.Gid); err != nil {
		return Account{}, fmt.Errorf("account %s: gid %q", name, u.Gid)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return Account{}, fmt.Errorf("account %s: groups: %w", name, err)
	}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil && !slices.Contains(a.Groups, g) {
			a.Groups = append(a.Groups, g)
		}
	}
	if !slices.Contains(a.Groups, a.GID) {
		a.Groups = append(a.Groups, a.GID)
	}
	return a, nil
}

// Credential is what exec needs to start a child as the account.
func (a Account) Credential() *syscall.Credential {
	groups := make([]uint32, len(a.Groups))
	for i, g := range a.Groups {
		groups[i] = uint32(g)
	}
	return &syscall.Credential{Uid: uint32(a.UID), Gid: uint32(a.GID), Groups: groups}
}

// ErrNotRoot is returned by Drop when the process runs as another account
// and cannot become the one asked for.
var ErrNotRoot = errors.New("must be started as root to change account")

// Drop makes the whole process (every thread: Go's syscall.Setuid applies
// to all of them) run as a, with its groups and nothing else. Running as a
// already is fine. It checks the result: afterwards, getting root back
// must fail.
func Drop(a Account) error {
	if os.Getuid() == a.UID && os.Geteuid() == a.UID && os.Getgid() == a.GID {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as %s: %w", a.Name, ErrNotRoot)
	}
	if err := syscall.Setgroups(a.Groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(a.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", a.GID, err)
	}
	if err := syscall.Setuid(a.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", a.UID, err)
	}
	if a.UID != 0 && syscall.Setuid(0) == nil {
		return errors.New("setuid: root could be taken back")
	}
	if os.Getuid() != a.UID || os.Geteuid() != a.UID || os.Getegid() != a.GID {
		return fmt.Errorf("still uid %d gid %d after dropping to %s", os.Geteuid(), os.Getegid(), a.Name)
	}
	return nil
}

// DropTo looks up name and drops to it; "" does nothing.
func DropTo(name string) error {
	if name == "" {
		return nil
	}
	a, err := Lookup(name)
	if err != nil {
		return err
	}
	return Drop(a)
}

// SysProcAttr starts a child as a: with its credentials when this process
// is root, as this process otherwise (an ordinary user's set-up, where
// every program runs as that user).
func (a Account) SysProcAttr() *syscall.SysProcAttr {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.SysProcAttr{Credential: a.Credential()}
}

// DropToOwner drops to the owner of path (a mailbox; its parent, the home
// directory, while the mailbox is still to be made), for a daemon that
// serves system accounts one per process: started as root, it becomes the
// user who logged in. It refuses a path owned by root, and does nothing
// when the process is not root (it then runs as one user for all).
func DropToOwner(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		fi, err = os.Stat(filepath.Dir(path))
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner", path)
	}
	if st.Uid == 0 {
		return fmt.Errorf("%s belongs to root: not serving it as root", path)
	}
	a, err := Lookup(strconv.Itoa(int(st.Uid)))
	if err != nil {
		a = Account{Name: strconv.Itoa(int(st.Uid)), UID: int(st.Uid), GID: int(st.Gid), Groups: []int{int(st.Gid)}}
	}
	return Drop(a)
}

// TrustedCaller reports whether the user who ran this program may speak
// for others: always, unless the program runs with a group it was given by
// its set-group-ID bit (queue inject, which anyone may run); then only
// root and the account named may.
func TrustedCaller(account string) bool {
	if os.Getegid() == os.Getgid() || os.Getuid() == 0 {
		return true
	}
	a, err := Lookup(account)
	return err == nil && a.UID == os.Getuid()
}
