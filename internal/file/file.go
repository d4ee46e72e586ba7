// Package file is how dkms-guard reads and writes one file safely: the one
// bounded read of a regular file, the one atomic write, the check that a
// directory is really its own, and moving an odd file aside.
//
// Policy:
//   - A read never blocks on a FIFO, never reads a device or a directory,
//     and never takes more than the caller's bound: hooks run inside dpkg,
//     and a planted /dev/zero or a pipe must not hang or exhaust them.
//   - A write replaces a file whole (renameio: a temp file in the same
//     directory, fsync, rename, directory fsync), with exactly the mode
//     asked for: a crash leaves the old file or the new one.
//   - Nothing is deleted to make room: an odd file is moved aside, kept.
package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
)

// ErrNotRegular refuses a FIFO, a device or a directory where a file was
// expected: reading one could block forever or never end.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens name for reading if it is a regular file. It opens
// without blocking (a FIFO would otherwise hang the hook that holds the
// build lock) and checks what it opened, not what the name pointed to.
func OpenRegular(name string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := regular(f, name)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// ReadRegular reads a regular file of at most max bytes (see OpenRegular).
func ReadRegular(name string, max int64) ([]byte, error) {
	f, fi, err := OpenRegular(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, fi, name, max)
}

// ReadRegularIn is ReadRegular for name inside dir, never following a
// link out of dir (a dkms.conf linked to /dev/zero or /etc/shadow).
func ReadRegularIn(dir, name string, max int64) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return readIn(root, dir, name, max, false)
}

// ReadRegularAt is ReadRegular for name inside an opened root, following
// no link at all: a state file is dkms-guard's own, never a link. (An
// os.Root follows a link that stays inside it, O_NOFOLLOW or not, so the
// name is checked with Lstat and must be the file that was opened.)
func ReadRegularAt(root *os.Root, name string, max int64) ([]byte, error) {
	return readIn(root, root.Name(), name, max, true)
}

func readIn(root *os.Root, dir, name string, max int64, noLink bool) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	full := filepath.Join(dir, name)
	fi, err := regular(f, full)
	if err != nil {
		return nil, err
	}
	if noLink {
		if lfi, err := root.Lstat(name); err != nil || !os.SameFile(fi, lfi) {
			return nil, fmt.Errorf("%s: %w (a link, or replaced while read)", full, ErrNotRegular)
		}
	}
	return readAll(f, fi, full, max)
}

// regular is what f, opened as name, is, if it is a regular file.
func regular(f *os.File, name string) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, fi.Mode().Type())
	}
	return fi, nil
}

// readAll reads the regular file f (fi, named name) if it holds at most
// max bytes.
func readAll(f *os.File, fi fs.FileInfo, name string, max int64) ([]byte, error) {
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d dkms-guard reads", name, fi.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: grew past %d bytes while read", name, max)
	}
	return data, nil
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
	return SyncDir(root)
}

// WriteAtomicFile is WriteAtomic for the file name in its own directory,
// which must exist: the one-off writes (the notice, the metrics, the GRUB
// snippet) that hold no root open.
func WriteAtomicFile(name string, data []byte, perm os.FileMode) error {
	root, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteAtomic(root, filepath.Base(name), data, perm)
}

// SyncDir makes a rename or removal inside root durable: renameio promises
// atomicity, the directory's fsync is ours.
func SyncDir(root *os.Root) error {
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

// CheckDir refuses anything but a real directory (fi, from Lstat) owned by
// one of owners; the caller wraps the error with what the directory is for.
func CheckDir(dir string, fi fs.FileInfo, owners ...int) error {
	if !fi.IsDir() {
		kind := "a file"
		if fi.Mode()&fs.ModeSymlink != 0 {
			kind = "a symlink"
		}
		return fmt.Errorf("%s is %s, not a directory", dir, kind)
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
	return fmt.Errorf("%s is owned by uid %d, not %d", dir, st.Uid, owners[0])
}

// Warner receives the one W: line about a file moved aside.
type Warner interface {
	Warnf(format string, args ...any)
}

// AsideName is NAME.corrupt-UNIXTIME, with .2, .3... when a file was
// already moved aside in the same second: rename would replace it, and a
// kept file is never lost.
func AsideName(root *os.Root, name string, now time.Time) string {
	base := name + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
	aside := base
	for i := 2; ; i++ {
		if _, err := root.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			return aside
		}
		aside = base + "." + strconv.Itoa(i)
	}
}

// AsideIfOdd moves name aside (as NAME.corrupt-UNIXTIME, like a corrupt
// state file, with one warning) when it is anything but a regular file: a
// symlink planted in place of a state or lock file must neither redirect
// a write nor stop every later run with "path escapes from parent".
func AsideIfOdd(root *os.Root, dir, name string, warn Warner) error {
	fi, err := root.Lstat(name)
	if err != nil || fi.Mode().IsRegular() {
		return nil
	}
	kind := "a symlink"
	if fi.Mode()&fs.ModeSymlink == 0 {
		kind = "not a regular file"
	}
	aside := AsideName(root, name, time.Now())
	if err := root.Rename(name, aside); err != nil {
		return fmt.Errorf("moving aside %s, which is %s: %w", filepath.Join(dir, name), kind, err)
	}
	if warn != nil {
		warn.Warnf("moved aside %s: it was %s; kept it as %s", filepath.Join(dir, name), kind, filepath.Join(dir, aside))
	}
	return nil
}
