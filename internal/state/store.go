// Package state keeps dkms-guard's files under /var/lib/dkms-guard.
//
// State layout and policy:
//
//   - The directory is 0700 and must be a real directory owned by us: it is
//     checked with Lstat and opened once as an os.Root, so a symlink planted
//     there cannot redirect a write.
//   - Every file is versioned JSON, mode 0600, written only through
//     file.WriteAtomic: a renameio pending file in the same directory, fsync,
//     rename (the single commit point), then an fsync of the directory
//     (renameio promises atomicity, durability is ours). A crash at any
//     moment leaves either the old or the new file, never a torn one.
//   - Writers take an flock (package lock) on the separate, never-renamed
//     file "lock"; readers of a single file need no lock since files are
//     replaced whole. The boot decision has its own "boot.lock", taken
//     before the state lock, never while holding it.
//   - A file that does not parse, or carries an unknown schema, is never
//     trusted and never deleted: it is moved aside as NAME.corrupt-UNIXTIME
//     with one W: line, and the caller gets the safe default (no state).
//   - A store opened read-only (OpenReadOnly, for status) never writes:
//     no directory is made or chmod'ed and a corrupt file stays where it is.
//
// The package imports nothing of dkms-guard's but paths, file and lock: its
// record types (types.go) are its own, and callers convert to and from them.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/lock"
	"github.com/dkms-guard/dkms-guard/internal/paths"
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

// ErrReadOnly means a write was asked of a store opened read-only.
var ErrReadOnly = errors.New("BUG: write to a state directory opened read-only")

// Warner receives the one W: line about a corrupt file.
type Warner = file.Warner

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
func Open(p paths.Paths, create bool, warn Warner) (*Store, error) {
	dir := p.StateDir()
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
	if err := fileCheckDir(dir, fi, os.Geteuid()); err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		// Tightening is safe and keeps build logs' neighbours private;
		// say so rather than refuse, since apt must go on.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, unusable(p, warn, fmt.Errorf("cannot restrict %s to mode 0700 (%w)", dir, err))
		}
		if warn != nil {
			warn.Warnf("%s had mode %04o, set it to 0700", dir, fi.Mode().Perm())
		}
	}
	st, err := openRoot(dir, warn, false)
	if err != nil {
		return nil, err
	}
	if err := st.probe(); err != nil {
		st.Close()
		return nil, unusable(p, warn, err)
	}
	said(p, "")
	return st, nil
}

// ErrUnusable means the state directory cannot be written (a read-only or
// full file system): dkms-guard goes on without state, as stock dkms does
// without dkms-guard, and has said so once (see unusable).
var ErrUnusable = errors.New("state directory cannot be written")

// probe writes and removes one byte: a full or read-only file system is
// found here, once, rather than as an error in every later write.
func (s *Store) probe() error {
	const name = ".probe"
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err == nil {
		_, err = f.Write([]byte{'\n'})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		s.root.Remove(name)
	}
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return fmt.Errorf("cannot write to %s (%v)", s.dir, errno)
		}
		return fmt.Errorf("cannot write to %s (%v)", s.dir, err)
	}
	return nil
}

// unusable reports cause as one W: line per boot and problem, not one per
// hook and file: a marker in /run/dkms-guard (a tmpfs, usable when /var is
// not) remembers it was said; a usable state directory clears it.
func unusable(p paths.Paths, warn Warner, cause error) error {
	if warn != nil && !said(p, cause.Error()) {
		warn.Warnf("%v: dkms-guard goes on without keeping results, summaries or the boot decision, as stock dkms does, until it can write there again", cause)
	}
	return fmt.Errorf("%w: %w", ErrUnusable, cause)
}

// said records msg as said and tells whether it already was; an empty msg
// clears the record.
func said(p paths.Paths, msg string) bool {
	marker := filepath.Join(p.RunDir(), "state-unusable")
	if msg == "" {
		os.Remove(marker)
		return false
	}
	if old, err := os.ReadFile(marker); err == nil && string(old) == msg {
		return true
	}
	if os.MkdirAll(p.RunDir(), 0o700) == nil {
		os.WriteFile(marker, []byte(msg), 0o600)
	}
	return false
}

// OpenReadOnly opens dir for reading only, as status does: nothing is
// created, chmod'ed or moved aside, and a directory owned by root is
// accepted from any user (reading it then needs the permission to).
// A missing directory is ErrNoState; one this user may not read is an
// error wrapping fs.ErrPermission.
func OpenReadOnly(p paths.Paths, warn Warner) (*Store, error) {
	dir := p.StateDir()
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoState
	}
	if err != nil {
		return nil, fmt.Errorf("checking state directory: %w", err)
	}
	if err := fileCheckDir(dir, fi, 0, os.Geteuid()); err != nil {
		return nil, err
	}
	return openRoot(dir, warn, true)
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
func Update(ctx context.Context, p paths.Paths, create bool, warn Warner, fn func(*Store) error) error {
	st, err := Open(p, create, warn)
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

func (s *Store) flock(ctx context.Context, name string, waiting func()) (func(), error) {
	f, err := lock.Flock(ctx, s.root, s.dir, name, s.warn, waiting)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
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
	if !s.readOnly {
		if err := file.AsideIfOdd(s.root, s.dir, name, s.warn); err != nil {
			return false, err
		}
	}
	data, err := file.ReadRegularAt(s.root, name, maxFile)
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
	aside := file.AsideName(s.root, name, s.now())
	if err := s.root.Rename(name, aside); err != nil {
		return false, fmt.Errorf("moving aside corrupt %s: %w", filepath.Join(s.dir, name), err)
	}
	if s.warn != nil {
		s.warn.Warnf("ignored %s: %s; kept it as %s", filepath.Join(s.dir, name), why, filepath.Join(s.dir, aside))
	}
	return false, nil
}

// maxFile bounds a state file: 2000 modules for 10 kernels is a few MB.
const maxFile = 64 << 20

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
	if err := file.WriteAtomic(s.root, name, data, 0o600); err != nil {
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
	return file.SyncDir(s.root)
}

// LockBoot takes the boot-decision lock (package boot only): it serialises
// deciding and applying the default boot entry between dkms-guard
// processes, which runs lsinitramfs, update-initramfs and update-grub, far
// too long to hold the state lock. Take it before the state lock, never
// while holding it, so that the two are always taken in one order.
func (s *Store) LockBoot(ctx context.Context, wait time.Duration) (func(), error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return s.flock(ctx, "boot.lock", nil)
}

// fileCheckDir is file.CheckDir, its error marked ErrUnsafe.
func fileCheckDir(dir string, fi fs.FileInfo, owners ...int) error {
	if err := file.CheckDir(dir, fi, owners...); err != nil {
		return fmt.Errorf("%w: %w", ErrUnsafe, err)
	}
	return nil
}
