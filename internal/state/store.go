// Package state keeps dkms-guard's files under /var/lib/dkms-guard.
//
// State layout and policy:
//
//   - The directory is 0700 and must be a real directory owned by us: it is
//     checked with Lstat and opened once as an os.Root, so a symlink planted
//     there cannot redirect a write.
//   - Every file is versioned JSON, mode 0600, written only through
//     WriteAtomic: a renameio pending file in the same directory, fsync,
//     rename (the single commit point), then an fsync of the directory
//     (renameio promises atomicity, durability is ours). A crash at any
//     moment leaves either the old or the new file, never a torn one.
//   - Writers take an flock on the separate, never-renamed file "lock";
//     readers of a single file need no lock since files are replaced whole.
//   - A file that does not parse, or carries an unknown schema, is never
//     trusted and never deleted: it is moved aside as NAME.corrupt-UNIXTIME
//     with one W: line, and the caller gets the safe default (no state).
//   - A store opened read-only (OpenReadOnly, for status) never writes:
//     no directory is made or chmod'ed and a corrupt file stays where it is.
//
// The package imports nothing of dkms-guard's: its record types (types.go)
// are its own, and callers convert to and from them.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
)

// Schema is the version of every state file this build writes and reads.
const Schema = 1

// DefaultLockTimeout bounds a wait for the state lock: it is held only
// around a read-modify-write, so a long wait means another dkms-guard hangs.
const DefaultLockTimeout = 2 * time.Minute

// ErrNoState means the state directory does not exist (and was not to be created).
var ErrNoState = errors.New("no state directory")

// ErrUnsafe means the state directory is not what dkms-guard made it: a
// symlink, not a directory, or owned by someone else. Nothing is written.
var ErrUnsafe = errors.New("unsafe state directory")

// ErrLockTimeout means another dkms-guard held a lock for too long.
var ErrLockTimeout = errors.New("timed out waiting for the lock")

// ErrReadOnly means a write was asked of a store opened read-only.
var ErrReadOnly = errors.New("BUG: write to a state directory opened read-only")

// Warner receives the one W: line about a corrupt file.
type Warner interface {
	Warnf(format string, args ...any)
}

// Store is an opened state directory.
type Store struct {
	dir      string
	root     *os.Root
	warn     Warner
	readOnly bool
	now      func() time.Time
	// LockTimeout bounds Lock; DefaultLockTimeout unless a test says otherwise.
	LockTimeout time.Duration
}

// Open checks and opens dir for reading and writing. With create, a missing
// directory is made (0700, parents 0755); without it, ErrNoState is
// returned, which lets the apt hooks stay near-free on machines where
// dkms-guard has nothing recorded. A directory with a looser mode is
// tightened with a warning.
func Open(dir string, create bool, warn Warner) (*Store, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, ErrNoState
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", filepath.Dir(dir), err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating state directory: %w", err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("checking state directory: %w", err)
	}
	if err := checkDir(dir, fi, os.Geteuid()); err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		// Tightening is safe and keeps build logs' neighbours private;
		// say so rather than refuse, since apt must go on.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("restricting state directory: %w", err)
		}
		if warn != nil {
			warn.Warnf("%s had mode %04o, set it to 0700", dir, fi.Mode().Perm())
		}
	}
	return openRoot(dir, warn, false)
}

// OpenReadOnly opens dir for reading only, as status does: nothing is
// created, chmod'ed or moved aside, and a directory owned by root is
// accepted from any user (reading it then needs the permission to).
// A missing directory is ErrNoState; one this user may not read is an
// error wrapping fs.ErrPermission.
func OpenReadOnly(dir string, warn Warner) (*Store, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoState
	}
	if err != nil {
		return nil, fmt.Errorf("checking state directory: %w", err)
	}
	if err := checkDir(dir, fi, 0, os.Geteuid()); err != nil {
		return nil, err
	}
	return openRoot(dir, warn, true)
}

// checkDir refuses anything but a real directory owned by one of owners.
func checkDir(dir string, fi fs.FileInfo, owners ...int) error {
	if !fi.IsDir() {
		kind := "a file"
		if fi.Mode()&fs.ModeSymlink != 0 {
			kind = "a symlink"
		}
		return fmt.Errorf("%w: %s is %s, not a directory", ErrUnsafe, dir, kind)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	for _, uid := range owners {
		if int(st.Uid) == uid {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUnsafe, dir, st.Uid, owners[0])
}

func openRoot(dir string, warn Warner, readOnly bool) (*Store, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening state directory: %w", err)
	}
	return &Store{dir: dir, root: root, warn: warn, readOnly: readOnly, now: time.Now, LockTimeout: DefaultLockTimeout}, nil
}

// Update opens dir (creating it with create) and runs fn with the state
// lock held. A missing directory with create false means nothing was ever
// recorded: fn is not called and Update returns nil.
func Update(ctx context.Context, dir string, create bool, warn Warner, fn func(*Store) error) error {
	st, err := Open(dir, create, warn)
	if errors.Is(err, ErrNoState) {
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Locked(ctx, func() error { return fn(st) })
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// Dir is the state directory's path.
func (s *Store) Dir() string { return s.dir }

// Lock takes the exclusive state lock, held only around a read-modify-write
// of state files, waiting at most LockTimeout (or until ctx is done). The
// returned function releases it. The lock file is never renamed or
// removed, so every process locks the same inode.
func (s *Store) Lock(ctx context.Context) (func(), error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	ctx, cancel := context.WithTimeout(ctx, s.LockTimeout)
	defer cancel()
	return s.flock(ctx, "lock", nil)
}

// Locked runs fn with the state lock held.
func (s *Store) Locked(ctx context.Context, fn func() error) error {
	unlock, err := s.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// BuildLock serialises builds between dkms-guard processes (a rebuild in a
// terminal and a kernel hook under apt): dkms has no lock of its own and
// dkms 3.0.x builds every kernel of a module version in the same
// M/V/build directory. The lock lives in dir (/run/dkms-guard: only root
// can create there, and it works when /var is read-only or the state
// directory unusable), made 0700 if missing and refused if it is not a
// real directory of ours. It waits at most wait (0: until ctx is done);
// waiting is called once if the lock is busy. Only the build package
// takes it.
func BuildLock(ctx context.Context, dir string, wait time.Duration, waiting func()) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if err := checkDir(dir, fi, os.Geteuid()); err != nil {
		return nil, err
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
	return flock(ctx, root, dir, "build.lock", waiting)
}

// ErrInterrupted means dkms-guard was told to stop while it waited.
var ErrInterrupted = errors.New("interrupted while waiting for the lock")

func (s *Store) flock(ctx context.Context, name string, waiting func()) (func(), error) {
	return flock(ctx, s.root, s.dir, name, waiting)
}

// flock takes an exclusive flock on dir/name (opened through root, never
// following a link), polling until ctx is done.
func flock(ctx context.Context, root *os.Root, dir, name string, waiting func()) (func(), error) {
	f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
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
				return nil, fmt.Errorf("%w (%s)", ErrLockTimeout, filepath.Join(dir, name))
			}
			return nil, fmt.Errorf("%w (%s)", ErrInterrupted, filepath.Join(dir, name))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// versioned is the envelope every state file shares.
type versioned struct {
	Schema int `json:"schema"`
}

// Load reads name into v. It returns false when the file is missing, or
// when it was corrupt or of an unknown schema (then it has been moved aside
// with a warning, or only warned about in a read-only store): either way
// the caller goes on with its safe default.
func (s *Store) Load(name string, v any) (bool, error) {
	data, err := s.root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", filepath.Join(s.dir, name), err)
	}
	var hdr versioned
	why := ""
	if err := json.Unmarshal(data, &hdr); err != nil {
		why = "it is not valid JSON"
	} else if hdr.Schema != Schema {
		why = fmt.Sprintf("it has schema %d, this dkms-guard reads schema %d", hdr.Schema, Schema)
	} else if err := json.Unmarshal(data, v); err != nil {
		why = "it does not match the expected layout"
	}
	if why == "" {
		return true, nil
	}
	if s.readOnly {
		if s.warn != nil {
			s.warn.Warnf("ignored %s: %s", filepath.Join(s.dir, name), why)
		}
		return false, nil
	}
	aside := name + ".corrupt-" + strconv.FormatInt(s.now().Unix(), 10)
	if err := s.root.Rename(name, aside); err != nil {
		return false, fmt.Errorf("moving aside corrupt %s: %w", filepath.Join(s.dir, name), err)
	}
	if s.warn != nil {
		s.warn.Warnf("ignored %s: %s; kept it as %s", filepath.Join(s.dir, name), why, filepath.Join(s.dir, aside))
	}
	return false, nil
}

// Save writes v (which must embed the schema field) atomically as name.
func (s *Store) Save(name string, v any) error {
	if s.readOnly {
		return ErrReadOnly
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("BUG: encoding %s: %w", name, err)
	}
	data = append(data, '\n')
	if err := WriteAtomic(s.root, name, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(s.dir, name), err)
	}
	return nil
}

// Remove deletes name; a missing file is not an error.
func (s *Store) Remove(name string) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", filepath.Join(s.dir, name), err)
	}
	return syncDir(s.root)
}

// WriteAtomic replaces name inside root with data: temp file in the same
// directory (never $TMPDIR, which may be another file system), fsync,
// rename, directory fsync. The mode is set exactly, whatever the umask and
// whatever mode an older file had.
func WriteAtomic(root *os.Root, name string, data []byte, perm os.FileMode) error {
	pf, err := renameio.NewPendingFile(name, renameio.WithRoot(root), renameio.WithStaticPermissions(perm))
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	if _, err := pf.Write(data); err != nil {
		return err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(root)
}

func syncDir(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}
