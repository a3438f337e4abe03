package imap

import (
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"

	"mailsrv/pkg/mailstore"
)

// IDLE learns of other processes' changes from inotify (fsnotify): a
// delivery is a rename into new/, a flag change a rename within cur/, an
// expunge an unlink in cur/, a new keyword a rewrite of the folder's
// dovecot-keywords file. A process has one inotify instance, shared by all
// its sessions in IDLE (instances are few: 128 per user is common), with
// one watch per directory however many sessions look at it. The instance
// is closed when the last session leaves IDLE, so that nothing outlives
// its use. Where inotify cannot be had (no instance or watch left,
// disabled, a filesystem without it), IDLE polls; it also polls slowly
// with inotify, since changes made on another NFS host raise no event.

// watchHub is a process's inotify instance and who listens to what.
type watchHub struct {
	mu   sync.Mutex
	w    *fsnotify.Watcher      // nil while no session watches
	done chan struct{}          // closed when w's event reader has ended
	dirs map[string]*watchedDir // by path
	// newWatcher makes the instance: fsnotify.NewWatcher, or a test's
	// failing one.
	newWatcher func() (*fsnotify.Watcher, error)
}

// watchedDir is one watched directory.
type watchedDir struct {
	only string // only events on this file name count; "" for all
	subs map[*folderWatch]bool
}

// folderWatch is one session's subscription: kick receives a value
// (without blocking the sender: one pending value stands for any number
// of events) whenever its folder may have changed.
type folderWatch struct {
	hub  *watchHub
	dirs []string
	kick chan struct{}
}

// watch subscribes to the changes of the Maildir folder dir: its new/
// and cur/, and its keywords file.
func (h *watchHub) watch(dir string) (*folderWatch, error) {
	fw := &folderWatch{hub: h, kick: make(chan struct{}, 1)}
	h.mu.Lock()
	err := h.addLocked(fw, dir)
	var w *fsnotify.Watcher
	var done chan struct{}
	if err != nil {
		w, done = h.unwatchLocked(fw)
	}
	h.mu.Unlock()
	if w != nil {
		_ = w.Close()
		<-done
	}
	if err != nil {
		return nil, err
	}
	return fw, nil
}

// addLocked makes the instance if there is none, and the watches of dir
// that do not exist yet.
func (h *watchHub) addLocked(fw *folderWatch, dir string) error {
	if h.w == nil {
		mk := h.newWatcher
		if mk == nil {
			mk = fsnotify.NewWatcher
		}
		w, err := mk()
		if err != nil {
			return err
		}
		h.w, h.done, h.dirs = w, make(chan struct{}), map[string]*watchedDir{}
		go h.read(w, h.done)
	}
	for _, d := range []struct{ path, only string }{
		{filepath.Join(dir, "new"), ""},
		{filepath.Join(dir, "cur"), ""},
		{dir, mailstore.KeywordsName},
	} {
		wd := h.dirs[d.path]
		if wd == nil {
			if err := h.w.Add(d.path); err != nil {
				return err
			}
			wd = &watchedDir{only: d.only, subs: map[*folderWatch]bool{}}
			h.dirs[d.path] = wd
		}
		wd.subs[fw] = true
		fw.dirs = append(fw.dirs, d.path)
	}
	return nil
}

// close ends the subscription; the last one closes the instance and waits
// for its reader.
func (fw *folderWatch) close() {
	if fw == nil {
		return
	}
	h := fw.hub
	h.mu.Lock()
	w, done := h.unwatchLocked(fw)
	h.mu.Unlock()
	if w != nil {
		_ = w.Close() // only fails if the file descriptor was closed already
		<-done
	}
}

// unwatchLocked removes fw; when no one is left it returns the instance,
// detached from h, for the caller to close outside the lock (its reader
// takes the lock).
func (h *watchHub) unwatchLocked(fw *folderWatch) (*fsnotify.Watcher, chan struct{}) {
	for _, p := range fw.dirs {
		wd := h.dirs[p]
		delete(wd.subs, fw)
		if len(wd.subs) == 0 {
			// The directory may be gone, and its watch with it.
			_ = h.w.Remove(p)
			delete(h.dirs, p)
		}
	}
	fw.dirs = nil
	if len(h.dirs) > 0 || h.w == nil {
		return nil, nil
	}
	w, done := h.w, h.done
	h.w, h.done, h.dirs = nil, nil, nil
	return w, done
}

// read passes w's events on to the sessions concerned until w is closed.
// An error (the kernel's queue overflowed) may hide any change: everyone
// looks.
func (h *watchHub) read(w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	errs := w.Errors
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			h.dispatch(w, ev.Name)
		case _, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			h.kickAll(w)
		}
	}
}

// dispatch kicks the sessions watching the directory of name, or name
// itself (a watched directory removed or renamed).
func (h *watchHub) dispatch(w *fsnotify.Watcher, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != w {
		return // an instance being closed
	}
	if wd := h.dirs[filepath.Dir(name)]; wd != nil && (wd.only == "" || wd.only == filepath.Base(name)) {
		wd.kickAll()
	}
	if wd := h.dirs[name]; wd != nil {
		wd.kickAll()
	}
}

func (h *watchHub) kickAll(w *fsnotify.Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != w {
		return
	}
	for _, wd := range h.dirs {
		wd.kickAll()
	}
}

func (wd *watchedDir) kickAll() {
	for fw := range wd.subs {
		select {
		case fw.kick <- struct{}{}:
		default: // one is pending already
		}
	}
}
