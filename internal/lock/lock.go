// Package lock is dkms-guard's flock on a lock file, and the build lock
// built on it.
//
// Policy: a lock file is a stable, never-renamed regular file, opened
// through an os.Root without following a link (a planted symlink is moved
// aside, not obeyed); a wait is bounded by its context, polled, and
// interruptible; the lock is the open file, released by closing it, so a
// killed holder releases it too.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
)

// ErrTimeout means another dkms-guard held a lock for too long.
var ErrTimeout = errors.New("timed out waiting for the lock")

// ErrInterrupted means dkms-guard was told to stop while it waited.
var ErrInterrupted = errors.New("interrupted while waiting for the lock")

// Flock takes an exclusive flock on dir/name (opened through root, never
// following a link), polling until ctx is done, and returns the open
// file, which holds the lock until closed. A lock file that is not a
// regular file (a planted symlink) is moved aside first, with a warning:
// left there, it would stop every later run. waiting, if not nil, is
// called once when the lock is busy.
func Flock(ctx context.Context, root *os.Root, dir, name string, warn file.Warner, waiting func()) (*os.File, error) {
	if err := file.AsideIfOdd(root, dir, name, warn); err != nil {
		return nil, err
	}
	f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", filepath.Join(dir, name), err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w (%s)", ErrTimeout, filepath.Join(dir, name))
			}
			return nil, fmt.Errorf("%w (%s)", ErrInterrupted, filepath.Join(dir, name))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Build is a held build lock. Its file says what the holder is doing, so
// that a build left running by a dkms-guard that was killed (SIGKILL, a
// crash) is found by the next one: Note before each build, Previous after
// taking the lock.
type Build struct {
	f    *os.File
	prev string
}

// TakeBuild takes the build lock, which serialises builds between
// dkms-guard processes (a rebuild in a terminal and a kernel hook under
// apt): dkms has no lock of its own and dkms 3.0.x builds every kernel of a
// module version in the same M/V/build directory. The lock lives in dir
// (/run/dkms-guard: only root can create there, and it works when /var is
// read-only or the state directory unusable), made 0700 if missing and
// refused if it is not a real directory of ours. It waits at most wait
// (0: until ctx is done); waiting is called once if the lock is busy.
// Only the build package takes it.
func TakeBuild(ctx context.Context, dir string, wait time.Duration, warn file.Warner, waiting func()) (*Build, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if err := file.CheckDir(dir, fi, os.Geteuid()); err != nil {
		return nil, fmt.Errorf("unsafe lock directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	f, err := Flock(ctx, root, dir, "build.lock", warn, waiting)
	if err != nil {
		return nil, err
	}
	prev, err := io.ReadAll(io.LimitReader(f, 64<<10)) // a line per running build
	if err != nil && warn != nil {
		// Builds go on; only a killed predecessor's leftovers go unseen.
		warn.Warnf("cannot read the build lock's note (%v): builds a killed dkms-guard left running are not looked for", err)
	}
	return &Build{f: f, prev: strings.TrimSpace(string(prev))}, nil
}

// Previous is what the last holder noted and did not clear ("" if nothing).
func (l *Build) Previous() string { return l.prev }

// Note replaces what the lock file says ("" clears it).
func (l *Build) Note(text string) error {
	// Written before the rest is cut off: a crash in between leaves the
	// new note with a tail of the old one, never no note at all.
	var data []byte
	if text != "" {
		data = []byte(text + "\n")
		if _, err := l.f.WriteAt(data, 0); err != nil {
			return fmt.Errorf("writing the build lock's note: %w", err)
		}
	}
	if err := l.f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("writing the build lock's note: %w", err)
	}
	return nil
}

// Unlock clears the note and releases the lock. A note that cannot be
// cleared is harmless: the next holder finds its builds gone.
func (l *Build) Unlock() {
	l.Note("")
	l.f.Close()
}
