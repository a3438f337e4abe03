package mailstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// CREATE-SPECIAL-USE: attributes kept with the folder through RENAME,
// refused ones leave nothing behind, a damaged file counts as none.
func TestCreateSpecial(t *testing.T) {
	s := newStore(t)
	if err := s.CreateSpecial("Sent Items", []string{`\sent`, `\Sent`, `\Archive`}); err != nil {
		t.Fatal(err)
	}
	if got := s.SpecialUses("Sent Items"); !slices.Equal(got, []string{`\Sent`, `\Archive`}) {
		t.Fatalf("uses %q", got)
	}
	if got := s.SpecialUses("Sent"); !slices.Equal(got, []string{`\Sent`}) {
		t.Fatalf("uses of Sent by name %q", got)
	}
	if err := s.Rename("Sent Items", "Old/Sent"); err != nil {
		t.Fatal(err)
	}
	if got := s.SpecialUses("Old/Sent"); !slices.Equal(got, []string{`\Sent`, `\Archive`}) {
		t.Fatalf("uses after rename %q", got)
	}
	for _, bad := range [][]string{{`\All`}, {`\Flagged`}, {`\Trash`, `\Bogus`}, {`Sent`}} {
		if err := s.CreateSpecial("Nope", bad); !errors.Is(err, ErrUseAttr) {
			t.Fatalf("CreateSpecial(%q) = %v, want ErrUseAttr", bad, err)
		}
	}
	if names, err := s.List(); err != nil || slices.Contains(names, "Nope") {
		t.Fatalf("refused folder made: %q %v", names, err)
	}
	if err := s.CreateSpecial("Plain", nil); err != nil {
		t.Fatal(err)
	}
	if got := s.SpecialUses("Plain"); len(got) != 0 {
		t.Fatalf("uses of a plain folder %q", got)
	}
	if err := s.CreateSpecial("Plain", []string{`\Junk`}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	dir := filepath.Join(s.Root, ".Old.Sent", SpecialUseName)
	if err := os.WriteFile(dir, []byte("\\Flagged\n\x00garbage\n \\trash \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := s.SpecialUses("Old/Sent"); !slices.Equal(got, []string{`\Trash`}) {
		t.Fatalf("uses from a damaged file %q", got)
	}
	if got := s.SpecialUses("bad.name"); len(got) != 0 {
		t.Fatalf("uses of an invalid name %q", got)
	}
}
