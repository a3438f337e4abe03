package mailstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseQuota reads a size such as "500K", "10M", "1G" or "1048576"
// (bytes; K, M, G and T are powers of 1024), the form of the quota=
// attribute of etc/users.
func ParseQuota(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	if s != "" {
		switch strings.ToUpper(s[len(s)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("quota %q: want a size such as 500M or 2G", s)
	}
	return n * mult, nil
}

// Usage returns the total size (with CRLF line endings, as IMAP counts it)
// and number of the messages in every folder of the store.
func (s *Store) Usage() (size int64, count int, err error) {
	names, err := s.List()
	if err != nil {
		return 0, 0, err
	}
	for _, n := range names {
		f, err := s.Folder(n)
		if errors.Is(err, ErrNoFolder) {
			continue // deleted meanwhile
		}
		if err != nil {
			return 0, 0, err
		}
		bases, err := f.scan()
		if err != nil {
			return 0, 0, err
		}
		for _, b := range bases {
			n, err := f.Size(b)
			if err != nil && !errors.Is(err, ErrGone) {
				return 0, 0, err
			}
			size += n
			count++
		}
	}
	return size, count, nil
}
