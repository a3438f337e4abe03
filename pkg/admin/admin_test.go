package admin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"mailsrv/pkg/address"
	"mailsrv/pkg/auth"
	"mailsrv/pkg/config"
)

const goodPassword = "violet tram ledger ninety"

// newRoot returns an Admin for a fresh root with the local domain
// example.org.
func newRoot(t *testing.T) *Admin {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := Init(root, "mx.example.org"); err != nil {
		t.Fatal(err)
	}
	a := New(root)
	if err := a.AddDomain("example.org"); err != nil {
		t.Fatal(err)
	}
	return a
}

// wantCode checks the exit status an error maps to.
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	if got := ExitCode(err); got != code {
		t.Fatalf("%s: error %v gives exit %d, want %d", what, err, got, code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInit(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	wantCode(t, "init", Init(root, "MX.Example.org."), ExitOK)
	for _, p := range []string{"etc/me", "etc/domains", "etc/users", "etc/aliases", "mail", "queue/incoming", "queue/tmp"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("after init: %v", err)
		}
	}
	if got := readFile(t, filepath.Join(root, "etc/me")); got != "mx.example.org\n" {
		t.Errorf("etc/me = %q", got)
	}
	// Idempotent, and a file someone edited is left alone.
	if err := os.WriteFile(filepath.Join(root, "etc/domains"), []byte("kept.org\n"), 0644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "init again", Init(root, "mx.example.org"), ExitOK)
	if got := readFile(t, filepath.Join(root, "etc/domains")); got != "kept.org\n" {
		t.Errorf("init again changed etc/domains to %q", got)
	}
	err := Init(root, "other.example.net")
	wantCode(t, "init with another host name", err, ExitCantCreate)
	if !strings.Contains(err.Error(), "refusing") {
		t.Errorf("error %q does not say it refuses", err)
	}
	if got := readFile(t, filepath.Join(root, "etc/me")); got != "mx.example.org\n" {
		t.Errorf("etc/me clobbered: %q", got)
	}
	wantCode(t, "bad host name", Init(t.TempDir(), "bad host"), ExitDataErr)
	wantCode(t, "host name as literal", Init(t.TempDir(), "-x.org"), ExitDataErr)
}

func TestDomains(t *testing.T) {
	a := newRoot(t)
	wantCode(t, "add", a.AddDomain("B.example.NET."), ExitOK)
	wantCode(t, "add another", a.AddDomain("a.example.net"), ExitOK)
	wantCode(t, "add twice", a.AddDomain("example.org"), ExitDataErr)
	wantCode(t, "add twice, other case", a.AddDomain("EXAMPLE.org"), ExitDataErr)
	wantCode(t, "literal", a.AddDomain("[192.0.2.1]"), ExitDataErr)
	wantCode(t, "bad name", a.AddDomain("a..b"), ExitDataErr)
	wantCode(t, "bad name", a.AddDomain("a/b"), ExitDataErr)
	ds, err := a.Domains()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.example.net", "b.example.net", "example.org"}; !slices.Equal(ds, want) {
		t.Errorf("Domains = %q, want %q", ds, want)
	}
	if !strings.HasPrefix(readFile(t, a.Cfg.Path(config.FileDomains)), "# Local domains") {
		t.Error("the comment of etc/domains was lost")
	}
	wantCode(t, "del", a.DelDomain("a.example.net", false), ExitOK)
	wantCode(t, "del unknown", a.DelDomain("a.example.net", false), ExitNoUser)
	if ok, _ := a.Cfg.IsLocal("a.example.net"); ok {
		t.Error("a.example.net is still local after del")
	}
}

func TestDelDomainInUse(t *testing.T) {
	a := newRoot(t)
	if err := a.AddDomain("other.org"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddUser("bob@example.org", goodPassword, nil); err != nil {
		t.Fatal(err)
	}
	for _, al := range [][]string{{"@example.org", "bob@example.org"}, {"info@other.org", "bob@example.org"}} {
		if err := a.AddAlias(al[0], al[1:]); err != nil {
			t.Fatal(err)
		}
	}
	err := a.DelDomain("example.org", false)
	wantCode(t, "del domain with a user", err, ExitDataErr)
	if !strings.Contains(err.Error(), "1 users and 1 aliases") {
		t.Errorf("error %q does not count what is left", err)
	}
	wantCode(t, "del --force", a.DelDomain("example.org", true), ExitOK)
	if us, _ := a.Users(""); len(us) != 0 {
		t.Errorf("users left after del --force: %v", us)
	}
	as, err := a.Aliases("")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Source != "info@other.org" {
		t.Errorf("aliases after del --force = %v, want only info@other.org", as)
	}
	if _, err := os.Stat(filepath.Join(a.Cfg.MailDir(), "example.org/bob/new")); err != nil {
		t.Errorf("del --force removed the mailbox: %v", err)
	}
}

func TestAddUser(t *testing.T) {
	a := newRoot(t)
	wantCode(t, "add", a.AddUser("Bob@Example.org", goodPassword, map[string]string{"quota": "10M"}), ExitOK)
	u, ok, err := a.Cfg.LookupUser("bob@example.org")
	if err != nil || !ok {
		t.Fatalf("LookupUser after add: %v %v", ok, err)
	}
	if err := auth.Verify(u.Hash, goodPassword); err != nil {
		t.Errorf("stored hash does not verify: %v", err)
	}
	if u.Attrs["quota"] != "10M" {
		t.Errorf("attrs = %v", u.Attrs)
	}
	box := a.Cfg.Mailbox(u)
	if box != filepath.Join(a.Cfg.Root, "mail/example.org/bob") {
		t.Errorf("mailbox at %s", box)
	}
	for _, d := range []string{"new", "cur", "tmp", ".Sent/cur", ".Trash/new", ".Drafts/maildirfolder"} {
		if _, err := os.Stat(filepath.Join(box, d)); err != nil {
			t.Errorf("mailbox: %v", err)
		}
	}
	if strings.Contains(readFile(t, a.Cfg.Path(config.FileUsers)), goodPassword) {
		t.Fatal("etc/users holds the password in clear")
	}
	fi, err := os.Stat(a.Cfg.Path(config.FileUsers))
	if err != nil || fi.Mode().Perm() != 0640 {
		t.Errorf("etc/users mode %v, %v; want 0640", fi.Mode(), err)
	}

	tests := []struct {
		name, addr, password string
		code                 int
	}{
		{"twice", "bob@example.org", goodPassword, ExitDataErr},
		{"twice, other case", "BOB@example.org", goodPassword, ExitDataErr},
		{"domain not local", "bob@example.net", goodPassword, ExitDataErr},
		{"short password", "ann@example.org", "Kq7#vLp2@xZ", ExitDataErr},
		{"common password", "ann@example.org", "Password2024!", ExitDataErr},
		{"password is the user", "annabel@example.org", "annabel annabel!", ExitDataErr},
		{"tag separator in name", "ann+x@example.org", goodPassword, ExitDataErr},
		{"quoted local part", `"a b"@example.org`, goodPassword, ExitDataErr},
		{"no domain", "ann", goodPassword, ExitDataErr},
		{"dot first", ".ann@example.org", goodPassword, ExitDataErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := readFile(t, a.Cfg.Path(config.FileUsers))
			wantCode(t, "add "+tc.addr, a.AddUser(tc.addr, tc.password, nil), tc.code)
			if after := readFile(t, a.Cfg.Path(config.FileUsers)); after != before {
				t.Errorf("a refused add changed etc/users:\n%s", after)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(a.Cfg.MailDir(), "example.org/ann")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused user got a mailbox: %v", err)
	}
}

func TestPasswdDelUser(t *testing.T) {
	a := newRoot(t)
	if err := a.AddUser("bob@example.org", goodPassword, map[string]string{"quota": "1G"}); err != nil {
		t.Fatal(err)
	}
	const newPassword = "orchid canal sixty whistle"
	wantCode(t, "passwd", a.SetPassword("bob@example.org", newPassword), ExitOK)
	u, _, err := a.Cfg.LookupUser("bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Verify(u.Hash, newPassword); err != nil {
		t.Errorf("new password does not verify: %v", err)
	}
	if u.Attrs["quota"] != "1G" {
		t.Errorf("passwd lost the attributes: %v", u.Attrs)
	}
	wantCode(t, "passwd weak", a.SetPassword("bob@example.org", "qwertyuiop123"), ExitDataErr)
	wantCode(t, "passwd unknown", a.SetPassword("zed@example.org", newPassword), ExitNoUser)

	box := a.Cfg.Mailbox(u)
	wantCode(t, "del", a.DelUser("bob@example.org", false), ExitOK)
	if _, ok, _ := a.Cfg.LookupUser("bob@example.org"); ok {
		t.Error("user still there after del")
	}
	if _, err := os.Stat(filepath.Join(box, "cur")); err != nil {
		t.Errorf("del without --purge removed the mailbox: %v", err)
	}
	wantCode(t, "del unknown", a.DelUser("bob@example.org", false), ExitNoUser)

	if err := a.AddUser("ann@example.org", goodPassword, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "del --purge", a.DelUser("ann@example.org", true), ExitOK)
	if _, err := os.Stat(filepath.Join(a.Cfg.MailDir(), "example.org/ann")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mailbox after --purge: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Cfg.MailDir(), "example.org/bob")); err != nil {
		t.Errorf("--purge of ann touched bob: %v", err)
	}
}

func TestListUsers(t *testing.T) {
	a := newRoot(t)
	if err := a.AddDomain("example.net"); err != nil {
		t.Fatal(err)
	}
	// Written out of order, and by hand, as an administrator might.
	h, err := auth.Hash(goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	lines := "# users\nzed@example.org:" + h + "\nann@example.net:" + h + ":quota=5M b=2\nbob@example.org:" + h + "\n"
	if err := os.WriteFile(a.Cfg.Path(config.FileUsers), []byte(lines), 0640); err != nil {
		t.Fatal(err)
	}
	got := func(domain string) []string {
		us, err := a.Users(domain)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range us {
			out = append(out, u.String())
		}
		return out
	}
	if g, want := got(""), []string{"ann@example.net b=2 quota=5M", "bob@example.org", "zed@example.org"}; !slices.Equal(g, want) {
		t.Errorf("Users() = %q, want %q", g, want)
	}
	if g, want := got("Example.ORG"), []string{"bob@example.org", "zed@example.org"}; !slices.Equal(g, want) {
		t.Errorf("Users(example.org) = %q, want %q", g, want)
	}
	for _, s := range got("") {
		if strings.Contains(s, "argon2") {
			t.Errorf("a listed user shows its hash: %q", s)
		}
	}
}

func TestAliases(t *testing.T) {
	a := newRoot(t)
	if err := a.AddUser("bob@example.org", goodPassword, nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		op   func() error
		code int
	}{
		{"add", func() error { return a.AddAlias("Postmaster@example.org", []string{"bob@example.org"}) }, ExitOK},
		{"append", func() error {
			return a.AddAlias("postmaster@example.org", []string{"<ann@remote.example>", "BOB@example.org"})
		}, ExitOK},
		{"catch-all", func() error { return a.AddAlias("@example.org", []string{"postmaster@example.org"}) }, ExitOK},
		{"target through an alias", func() error { return a.AddAlias("abuse@example.org", []string{"postmaster@example.org"}) }, ExitOK},
		{"self means own mailbox", func() error { return a.AddAlias("bob@example.org", []string{"bob@example.org", "copy@remote.example"}) }, ExitOK},
		{"self that is no user", func() error { return a.AddAlias("carl@example.org", []string{"carl@example.org"}) }, ExitNoUser},
		{"source domain not local", func() error { return a.AddAlias("x@remote.example", []string{"bob@example.org"}) }, ExitDataErr},
		{"bad source", func() error { return a.AddAlias("x@@example.org", []string{"bob@example.org"}) }, ExitDataErr},
		{"bad target", func() error { return a.AddAlias("x@example.org", []string{"bob@"}) }, ExitDataErr},
		{"no target", func() error { return a.AddAlias("x@example.org", nil) }, ExitUsage},
		{"del unknown alias", func() error { return a.DelAlias("nobody@example.org", nil) }, ExitNoUser},
		{"del unknown target", func() error { return a.DelAlias("abuse@example.org", []string{"zed@example.org"}) }, ExitNoUser},
	}
	for _, s := range steps {
		wantCode(t, s.name, s.op(), s.code)
	}
	list := func() []string {
		as, err := a.Aliases("")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, al := range as {
			out = append(out, al.String())
		}
		return out
	}
	want := []string{
		"@example.org: postmaster@example.org",
		"abuse@example.org: postmaster@example.org",
		"bob@example.org: bob@example.org, copy@remote.example",
		"postmaster@example.org: bob@example.org, ann@remote.example",
	}
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("aliases:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	wantCode(t, "del target", a.DelAlias("postmaster@example.org", []string{"ann@remote.example"}), ExitOK)
	wantCode(t, "del last target", a.DelAlias("abuse@example.org", []string{"postmaster@example.org"}), ExitOK)
	wantCode(t, "del whole", a.DelAlias("bob@example.org", nil), ExitOK)
	want = []string{"@example.org: postmaster@example.org", "postmaster@example.org: bob@example.org"}
	if got := list(); !slices.Equal(got, want) {
		t.Errorf("aliases after del:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReaderSeesEdits checks that a Config opened before the edits (a
// running daemon) resolves with them, plus-addressing and catch-all included.
func TestReaderSeesEdits(t *testing.T) {
	a := newRoot(t)
	reader := config.Open(a.Cfg.Root)
	resolve := func(s string) ([]string, error) {
		addr, err := address.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := reader.Resolve(addr)
		var out []string
		for _, tg := range ts {
			out = append(out, fmt.Sprintf("%s local=%v", tg.Addr, tg.Local()))
		}
		return out, err
	}
	if _, err := resolve("bob+news@example.org"); !errors.Is(err, config.ErrNoSuchUser) {
		t.Fatalf("before add: %v", err)
	}
	if err := a.AddUser("bob@example.org", goodPassword, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := resolve("bob+news@example.org"); err != nil || !slices.Equal(got, []string{"bob+news@example.org local=true"}) {
		t.Errorf("after add: %q, %v", got, err)
	}
	if err := a.AddAlias("@example.org", []string{"bob@example.org", "x@remote.example"}); err != nil {
		t.Fatal(err)
	}
	if got, err := resolve("anything@example.org"); err != nil || !slices.Equal(got, []string{"bob@example.org local=true", "x@remote.example local=false"}) {
		t.Errorf("catch-all: %q, %v", got, err)
	}
	if err := a.DelAlias("@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := resolve("anything@example.org"); !errors.Is(err, config.ErrNoSuchUser) {
		t.Errorf("after del of catch-all: %v", err)
	}
}

// TestConcurrentEdits runs many edits at once from separate Admins (as
// separate mailctl processes would be): the lock keeps every one.
func TestConcurrentEdits(t *testing.T) {
	a := newRoot(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := New(a.Cfg.Root)
			if i%2 == 0 {
				errs[i] = b.AddAlias(fmt.Sprintf("a%d@example.org", i), []string{"x@remote.example"})
			} else {
				errs[i] = b.AddAlias("all@example.org", []string{fmt.Sprintf("t%d@remote.example", i)})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("edit %d: %v", i, err)
		}
	}
	as, err := a.Aliases("")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != n/2+1 {
		t.Errorf("%d aliases, want %d: %v", len(as), n/2+1, as)
	}
	for _, al := range as {
		if al.Source == "all@example.org" && len(al.Targets) != n/2 {
			t.Errorf("all@ has %d targets, want %d", len(al.Targets), n/2)
		}
	}
}

// TestBrokenFile checks that an edit of a file that does not parse fails
// with exit 65 and changes nothing.
func TestBrokenFile(t *testing.T) {
	a := newRoot(t)
	broken := "bob@example.org: \n"
	if err := os.WriteFile(a.Cfg.Path(config.FileAliases), []byte(broken), 0644); err != nil {
		t.Fatal(err)
	}
	err := a.AddAlias("x@example.org", []string{"y@remote.example"})
	wantCode(t, "edit of a broken file", err, ExitDataErr)
	if !strings.Contains(err.Error(), "etc/aliases") {
		t.Errorf("error %q does not name the file", err)
	}
	if got := readFile(t, a.Cfg.Path(config.FileAliases)); got != broken {
		t.Errorf("broken file changed to %q", got)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{Usagef("x"), 64},
		{fail(ErrData, "x"), 65},
		{fmt.Errorf("wrapped: %w", auth.ErrWeakPassword), 65},
		{&config.FileError{Path: "p", Err: errors.New("x")}, 65},
		{fail(ErrNotFound, "x"), 67},
		{fail(ErrCantCreate, "x: %w", os.ErrExist), 73},
		{fail(ErrCantCreate, "x: %w", os.ErrPermission), 77},
		{fmt.Errorf("open: %w", os.ErrPermission), 77},
		{errors.New("disk on fire"), 75},
	}
	for _, tc := range tests {
		if got := ExitCode(tc.err); got != tc.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestReadPasswordLine(t *testing.T) {
	long := strings.Repeat("x", MaxPasswordSize)
	tests := []struct {
		name, in, want string
		code           int
	}{
		{"line", goodPassword + "\nsecond line\n", goodPassword, 0},
		{"crlf", goodPassword + "\r\n", goodPassword, 0},
		{"no newline", goodPassword, goodPassword, 0},
		{"spaces kept", "  a b  \n", "  a b  ", 0},
		{"longest", long + "\n", long, 0},
		{"too long", long + "y\n", "", ExitDataErr},
		{"much too long", strings.Repeat("z", 10*MaxPasswordSize), "", ExitDataErr},
		{"empty input", "", "", ExitUsage},
		{"empty line", "\n", "", 0},
		{"control character", "abc\x00def\n", "", ExitDataErr},
		{"escape", "abc\x1bdef\n", "", ExitDataErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadPasswordLine(strings.NewReader(tc.in))
			wantCode(t, tc.name, err, tc.code)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadPasswordNotTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	if _, err := w.WriteString(goodPassword + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var prompt strings.Builder
	_, err = ReadPassword(r, &prompt, false, "bob@example.org")
	wantCode(t, "not a terminal", err, ExitUsage)
	if !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("error %q does not say what to do", err)
	}
	pw, err := ReadPassword(r, &prompt, true, "bob@example.org")
	if err != nil || pw != goodPassword {
		t.Errorf("--password-stdin: %q, %v", pw, err)
	}
	if prompt.Len() != 0 {
		t.Errorf("prompted %q without a terminal", prompt.String())
	}
}

func TestParseAttrs(t *testing.T) {
	tests := []struct {
		args []string
		want map[string]string
		code int
	}{
		{nil, nil, 0},
		{[]string{"quota=10M", "uid=1001"}, map[string]string{"quota": "10M", "uid": "1001"}, 0},
		{[]string{"empty="}, map[string]string{"empty": ""}, 0},
		{[]string{"novalue"}, nil, ExitDataErr},
		{[]string{"=v"}, nil, ExitDataErr},
		{[]string{"a=b c"}, nil, ExitDataErr},
		{[]string{"a=b:c"}, nil, ExitDataErr},
	}
	for _, tc := range tests {
		got, err := ParseAttrs(tc.args)
		wantCode(t, fmt.Sprint(tc.args), err, tc.code)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseAttrs(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestCheckUserAliasesTo(t *testing.T) {
	a := newRoot(t)
	if err := a.AddUser("bob@example.org", goodPassword, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr   string
		exists bool
		code   int
	}{
		{"ann@example.org", false, ExitOK},
		{"BOB@example.org", false, ExitDataErr},
		{"ann@example.net", false, ExitDataErr},
		{"ann+x@example.org", false, ExitDataErr},
		{"bob@example.org", true, ExitOK},
		{"ann@example.org", true, ExitNoUser},
	}
	for _, tc := range tests {
		wantCode(t, fmt.Sprintf("CheckUser(%s, %v)", tc.addr, tc.exists), a.CheckUser(tc.addr, tc.exists), tc.code)
	}
	for _, al := range [][]string{{"z@example.org", "Bob@example.org"}, {"a@example.org", "x@remote.example", "bob@example.org"}, {"c@example.org", "x@remote.example"}} {
		if err := a.AddAlias(al[0], al[1:]); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := a.AliasesTo("bob@example.org")
	if err != nil || !slices.Equal(srcs, []string{"a@example.org", "z@example.org"}) {
		t.Errorf("AliasesTo(bob) = %q, %v", srcs, err)
	}
	if srcs, err := a.AliasesTo("nobody@example.org"); err != nil || len(srcs) != 0 {
		t.Errorf("AliasesTo(nobody) = %q, %v", srcs, err)
	}
}
