//go:build !linux

package mailstore

// readRels lists dir, the folder's sub/ ("new" or "cur"), as "sub/NAME"
// for each name not starting with a dot.
func readRels(dir, sub string) ([]string, error) {
	names, err := readNames(dir)
	if err != nil {
		return nil, err
	}
	rels := make([]string, len(names))
	for i, n := range names {
		rels[i] = sub + "/" + n
	}
	return rels, nil
}
