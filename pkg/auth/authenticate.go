package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"mailsrv/pkg/config"
	"mailsrv/pkg/throttle"
)

// ErrThrottled is a temporary refusal: the client's address or the account
// has failed too often and is locked out for a while. The password was not
// checked, so the answer says nothing about it. Protocols answer
// "454 4.7.0" (SMTP, RFC 4954 section 6), "-ERR [SYS/TEMP]" (POP3,
// RFC 3206) and "NO [UNAVAILABLE]" (IMAP, RFC 5530).
var ErrThrottled = errors.New("too many failed logins, try again later")

// Errors of Authenticate: nil, ErrMismatch (wrong user name or password:
// SMTP 535 5.7.8, POP3 -ERR [AUTH], IMAP NO [AUTHENTICATIONFAILED]),
// ErrThrottled, a context error when the client went away during the
// delay, or any other error for a fault of the server (unreadable
// etc/users, a hash in an unknown scheme, a failed checkpassword program):
// SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP], IMAP NO [UNAVAILABLE].

// Request is one login attempt.
type Request struct {
	Username string // as the client sent it; an address for etc/users
	Password string // never logged
	// RemoteIP is the client's address; the zero Addr (a local pipe, no
	// TCPREMOTEIP) counts failures per account only.
	RemoteIP netip.Addr
	Mech     string          // for the log: PLAIN, LOGIN, SCRAM-SHA-256, USER, ...
	Service  string          // for the log: smtpd, imapd, pop3d, ...
	Ctx      context.Context // ends the throttle delay early; nil means Background
}

// Backend checks a user name and password. ErrMismatch means wrong; other
// errors are faults of the server.
type Backend interface {
	Check(ctx context.Context, username, password string) (config.User, error)
}

// UsersBackend checks etc/users (Login) and upgrades the hash of a user
// who logged in (Upgrade) when NeedsRewrite says so. A failed upgrade is
// logged and does not fail the login.
type UsersBackend struct {
	Config *config.Config
	Logger *slog.Logger // nil: slog.Default()
}

// Check implements Backend.
func (b UsersBackend) Check(_ context.Context, username, password string) (config.User, error) {
	u, err := Login(b.Config, username, password)
	if err != nil || !NeedsRewrite(u, password) {
		return u, err
	}
	from := Scheme(u.Hash)
	nu, err := Upgrade(b.Config, u, password)
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	if err != nil {
		log.Warn("auth upgrade failed", "user", u.Addr.Key(), "err", err)
		return u, nil
	}
	log.Info("auth upgrade", "user", u.Addr.Key(), "from", from, "to", "ARGON2ID")
	return nu, nil
}

// Authenticator is what a daemon holds to check logins: the control files,
// the shared failure counts, and where passwords are checked.
type Authenticator struct {
	Config   *config.Config
	Throttle *throttle.Throttle // nil: no throttling
	Backend  Backend            // nil: UsersBackend{Config, Logger}
	Logger   *slog.Logger       // nil: slog.Default()
	// Sleep waits out a throttle delay; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Authenticate checks one password login. It counts the attempt against
// the client's address and the account, waits the delay the throttle
// asks for (a right password waits too), refuses with ErrThrottled during
// a lockout without checking the password, checks the password with the
// Backend, forgives the attempt if it succeeded, and logs one line
// (service, mech, user, ip, result, delay; never the password).
func (a *Authenticator) Authenticate(req Request) (config.User, error) {
	ctx := req.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	keys, delay, err := a.begin(ctx, req)
	if err != nil {
		return config.User{}, err
	}
	b := a.Backend
	if b == nil {
		b = UsersBackend{Config: a.Config, Logger: a.Logger}
	}
	u, err := b.Check(ctx, req.Username, req.Password)
	return u, a.finish(req, keys, delay, err)
}

// begin counts the attempt and waits its delay. It logs and returns an
// error if the attempt must stop here.
func (a *Authenticator) begin(ctx context.Context, req Request) ([]throttle.Key, time.Duration, error) {
	if a.Throttle == nil {
		return nil, 0, nil
	}
	keys := []throttle.Key{throttle.AccountKey(req.Username)}
	if req.RemoteIP.IsValid() {
		keys = append(keys, throttle.IPKey(req.RemoteIP))
	}
	v, err := a.Throttle.Attempt(keys...)
	if err != nil {
		a.log(req, "error", 0, err)
		return nil, 0, err
	}
	if v.Locked {
		a.logger().Info("auth", a.attrs(req, "throttled", 0, nil, "locked", string(v.Key.Kind), "until", v.Until.UTC().Format(time.RFC3339))...)
		return nil, 0, ErrThrottled
	}
	if v.Delay > 0 {
		sleep := a.Sleep
		if sleep == nil {
			sleep = sleepCtx
		}
		if err := sleep(ctx, v.Delay); err != nil {
			a.log(req, "gone", v.Delay, err)
			return nil, 0, err
		}
	}
	return keys, v.Delay, nil
}

// finish forgives a successful attempt and logs the result.
func (a *Authenticator) finish(req Request, keys []throttle.Key, delay time.Duration, err error) error {
	switch {
	case err == nil:
		if a.Throttle != nil {
			if terr := a.Throttle.Succeeded(keys...); terr != nil {
				a.logger().Warn("auth throttle", "err", terr)
			}
		}
		a.log(req, "ok", delay, nil)
		return nil
	case errors.Is(err, ErrMismatch):
		a.log(req, "fail", delay, nil)
		return ErrMismatch
	default:
		a.log(req, "error", delay, err)
		return err
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Authenticator) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// maxLoggedUser bounds the user name in the log: it is client input.
const maxLoggedUser = 128

func (a *Authenticator) attrs(req Request, result string, delay time.Duration, err error, more ...any) []any {
	user := req.Username
	if len(user) > maxLoggedUser {
		user = user[:maxLoggedUser] + "..."
	}
	ip := "-"
	if req.RemoteIP.IsValid() {
		ip = req.RemoteIP.String()
	}
	out := []any{"service", req.Service, "mech", req.Mech, "user", user, "ip", ip, "result", result}
	if delay > 0 {
		out = append(out, "delay", delay)
	}
	if err != nil {
		out = append(out, "err", err)
	}
	return append(out, more...)
}

func (a *Authenticator) log(req Request, result string, delay time.Duration, err error) {
	level := slog.LevelInfo
	if result == "error" {
		level = slog.LevelWarn
	}
	a.logger().Log(context.Background(), level, "auth", a.attrs(req, result, delay, err)...)
}

// UsersFile is implemented by a Backend that checks the passwords of
// etc/users elsewhere (the auth service of pkg/authhelper), in a process
// that may read etc/users itself: SCRAM-SHA-256, which reads the keys
// there, stays possible.
type UsersFile interface{ UsersFile() }

// RawNames is implemented by a Backend whose users are not addresses of
// etc/users (a checkpassword program serving system accounts): it gets
// login names as the client sent them.
type RawNames interface{ RawLoginNames() }

// LoginName completes a bare login name with the local domain
// (config.LoginName), unless the Backend takes raw names.
func (a *Authenticator) LoginName(name string) string {
	if _, raw := a.Backend.(RawNames); raw {
		return name
	}
	return a.Config.LoginName(name)
}
