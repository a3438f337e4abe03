package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

func TestEdit(t *testing.T) {
	errStop := errors.New("stop")
	tests := []struct {
		name    string
		rel     string
		before  string // "" means the file does not exist
		fn      func([]string) ([]string, error)
		after   string // wanted contents; the old ones if err is set
		err     error  // wanted error (errors.Is), or nil
		badFile bool   // want a *FileError
	}{
		{name: "append keeps comments", rel: FileDomains, before: "# c\n\na.example\n",
			fn:    func(l []string) ([]string, error) { return append(l, "b.example"), nil },
			after: "# c\n\na.example\nb.example\n"},
		{name: "missing file is created", rel: FileDomains,
			fn:    func(l []string) ([]string, error) { return append(l, "b.example"), nil },
			after: "b.example\n"},
		{name: "last line without newline", rel: FileDomains, before: "a.example",
			fn:    func(l []string) ([]string, error) { return append(l, "b.example"), nil },
			after: "a.example\nb.example\n"},
		{name: "emptied", rel: FileDomains, before: "a.example\n",
			fn:    func([]string) ([]string, error) { return nil, nil },
			after: ""},
		{name: "invalid result refused", rel: FileDomains, before: "a.example\n",
			fn:    func(l []string) ([]string, error) { return append(l, "not a domain"), nil },
			after: "a.example\n", badFile: true},
		{name: "invalid user line refused", rel: FileUsers, before: "",
			fn:    func(l []string) ([]string, error) { return append(l, "bob@example.org"), nil },
			after: "", badFile: true},
		{name: "duplicate user refused", rel: FileUsers, before: "bob@example.org:" + testHash + "\n",
			fn:    func(l []string) ([]string, error) { return append(l, "Bob@example.org:"+testHash), nil },
			after: "bob@example.org:" + testHash + "\n", badFile: true},
		{name: "alias with no target refused", rel: FileAliases, before: "a@example.org: b@x.example\n",
			fn:    func(l []string) ([]string, error) { return append(l, "c@example.org:"), nil },
			after: "a@example.org: b@x.example\n", badFile: true},
		{name: "two host names refused", rel: FileMe, before: "mx.example.org\n",
			fn:    func(l []string) ([]string, error) { return append(l, "mx2.example.org"), nil },
			after: "mx.example.org\n", badFile: true},
		{name: "error from fn changes nothing", rel: FileAliases, before: "a@example.org: b@x.example\n",
			fn:    func([]string) ([]string, error) { return []string{"garbage"}, errStop },
			after: "a@example.org: b@x.example\n", err: errStop},
		{name: "other files are not validated", rel: "etc/routes", before: "",
			fn:    func(l []string) ([]string, error) { return append(l, "anything : goes"), nil },
			after: "anything : goes\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			if tc.before != "" {
				files[tc.rel] = tc.before
			}
			c := writeRoot(t, files)
			err := c.Edit(tc.rel, 0600, tc.fn)
			var fe *FileError
			switch {
			case tc.badFile && !errors.As(err, &fe):
				t.Fatalf("Edit = %v, want a *FileError", err)
			case !tc.badFile && !errors.Is(err, tc.err):
				t.Fatalf("Edit = %v, want %v", err, tc.err)
			}
			got, rerr := os.ReadFile(c.Path(tc.rel))
			if tc.before == "" && err != nil {
				if !errors.Is(rerr, os.ErrNotExist) {
					t.Errorf("a failed edit created the file: %v", rerr)
				}
				return
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			if string(got) != tc.after {
				t.Errorf("file = %q, want %q", got, tc.after)
			}
			left, _ := os.ReadDir(c.Path("etc"))
			for _, e := range left {
				if n := e.Name(); n[0] == '.' && n != ".lock" {
					t.Errorf("temporary file %s left behind", n)
				}
			}
		})
	}
}

func TestEditPerm(t *testing.T) {
	c := writeRoot(t, nil)
	add := func(l []string) ([]string, error) { return append(l, "a.example"), nil }
	if err := c.Edit(FileDomains, 0640, add); err != nil {
		t.Fatal(err)
	}
	mode := func() os.FileMode {
		fi, err := os.Stat(c.Path(FileDomains))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(); m != 0640 {
		t.Errorf("new file mode %v, want 0640", m)
	}
	if err := os.Chmod(c.Path(FileDomains), 0604); err != nil {
		t.Fatal(err)
	}
	if err := c.Edit(FileDomains, 0600, func(l []string) ([]string, error) { return append(l, "b.example"), nil }); err != nil {
		t.Fatal(err)
	}
	if m := mode(); m != 0604 {
		t.Errorf("edited file mode %v, want the old 0604", m)
	}
}

// TestEditConcurrent runs edits at once from separate Configs: the lock
// serializes them, so none is lost.
func TestEditConcurrent(t *testing.T) {
	c := writeRoot(t, nil)
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- Open(c.Root).Edit(FileDomains, 0644, func(l []string) ([]string, error) {
				return append(l, fmt.Sprintf("d%d.example", i)), nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	d, err := c.Domains()
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != n {
		t.Errorf("%d domains after %d concurrent adds", len(d), n)
	}
}

func TestEditLongLine(t *testing.T) {
	long := "# " + string(make([]byte, MaxLineLen))
	c := writeRoot(t, map[string]string{FileDomains: long + "\n"})
	err := c.Edit(FileDomains, 0644, func(l []string) ([]string, error) { return l, nil })
	if err == nil {
		t.Fatal("Edit of a file with a line over MaxLineLen succeeded")
	}
	got, _ := os.ReadFile(c.Path(FileDomains))
	if !slices.Equal(got, []byte(long+"\n")) {
		t.Error("the file changed")
	}
}
