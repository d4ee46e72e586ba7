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

// ErrNoState means the state directory does not exist (and was not to be created).
var ErrNoState = errors.New("no state directory")

// ErrUnsafe means the state directory is not what dkms-guard made it: a
// symlink, not a directory, or owned by someone else. Nothing is written.
var ErrUnsafe = errors.New("unsafe state directory")

// ErrLockTimeout means another dkms-guard held the lock for too long.
var ErrLockTimeout = errors.New("timed out waiting for the state lock")

// Warner receives the one W: line about a corrupt file.
type Warner interface {
	Warnf(format string, args ...any)
}

// Store is an opened state directory.
type Store struct {
	dir  string
	root *os.Root
	warn Warner
	now  func() time.Time
}

// Open checks and opens dir. With create, a missing directory is made
// (0700, parents 0755); without it, ErrNoState is returned, which lets the
// apt hooks stay near-free on machines where dkms-guard has nothing recorded.
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
	if !fi.IsDir() {
		kind := "a file"
		if fi.Mode()&fs.ModeSymlink != 0 {
			kind = "a symlink"
		}
		return nil, fmt.Errorf("%w: %s is %s, not a directory", ErrUnsafe, dir, kind)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUnsafe, dir, st.Uid, os.Geteuid())
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
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening state directory: %w", err)
	}
	return &Store{dir: dir, root: root, warn: warn, now: time.Now}, nil
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// Dir is the state directory's path.
func (s *Store) Dir() string { return s.dir }

// Lock takes the exclusive state lock, held only around a read-modify-write
// of state files, waiting until ctx is done. The returned function releases
// it. The lock file is never renamed or removed, so every process locks the
// same inode.
func (s *Store) Lock(ctx context.Context) (func(), error) { return s.flock(ctx, "lock", nil) }

// BuildLock serialises builds between dkms-guard processes (a rebuild in a
// terminal and a kernel hook under apt): dkms 3.0.x builds every kernel of
// a module in the same M/V/build directory. waiting is called once if the
// lock is busy.
func (s *Store) BuildLock(ctx context.Context, waiting func()) (func(), error) {
	return s.flock(ctx, "build.lock", waiting)
}

func (s *Store) flock(ctx context.Context, name string, waiting func()) (func(), error) {
	f, err := s.root.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
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
			return nil, fmt.Errorf("locking %s: %w", filepath.Join(s.dir, name), err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w (%s)", ErrLockTimeout, filepath.Join(s.dir, name))
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
// with a warning): either way the caller goes on with its safe default.
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
