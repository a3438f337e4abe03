package queue

import (
	"errors"
	"fmt"
	"os"
)

// Delete removes a message from the queue, whatever its state, without a
// bounce: the administrator's tool against spam runs and mail that must not
// go out. A running scheduler notices at the message's next attempt (it is
// poked so that this happens now) and forgets it; a delivery already in
// progress may still complete.
func (q *Queue) Delete(id string) error {
	if !validID(id) {
		return fmt.Errorf("%q is not a queue id", id)
	}
	found := false
	for _, sub := range []string{DirIncoming, DirActive} {
		err := os.Remove(q.path(sub, id))
		if err == nil {
			found = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(q.path(DirState, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !found {
		return fmt.Errorf("%s: %w", id, os.ErrNotExist)
	}
	q.Poke('F')
	return nil
}
