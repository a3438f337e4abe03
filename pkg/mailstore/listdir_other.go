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

// listRels gives fn the "sub/NAME" of each name of dir not starting with a
// dot: end to end in text, ends where each ends.
func listRels(dir, sub string, fn func(text []byte, ends []uint32)) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	var text []byte
	var ends []uint32
	for _, n := range names {
		text = append(append(append(text, sub...), '/'), n...)
		ends = append(ends, uint32(len(text)))
	}
	fn(text, ends)
	return nil
}
