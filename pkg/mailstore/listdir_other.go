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

// appendRels appends the "sub/NAME" of each name of dir not starting with a
// dot to text, and where each ends to ends.
func appendRels(dir, sub string, text []byte, ends []uint32) ([]byte, []uint32, error) {
	names, err := readNames(dir)
	if err != nil {
		return text, ends, err
	}
	for _, n := range names {
		text = append(append(append(text, sub...), '/'), n...)
		ends = append(ends, uint32(len(text)))
	}
	return text, ends, nil
}
