package file

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A FIFO is refused at once (never blocks), a file over the bound is
// refused, a file within it is read whole.
func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o600))
	if _, err := ReadRegular(fifo, 10); !errors.Is(err, ErrNotRegular) {
		t.Errorf("FIFO: %v", err)
	}
	big := filepath.Join(dir, "big")
	must(t, os.WriteFile(big, []byte("0123456789A"), 0o600))
	if _, err := ReadRegular(big, 10); err == nil || !strings.Contains(err.Error(), "more than the 10") {
		t.Errorf("over the bound: %v", err)
	}
	data, err := ReadRegular(big, 11)
	if err != nil || string(data) != "0123456789A" {
		t.Errorf("within the bound: %q, %v", data, err)
	}
}

// ReadRegularAt follows no link, even one that stays inside the root.
func TestReadRegularAtNoLink(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "real"), []byte("x"), 0o600))
	must(t, os.Symlink("real", filepath.Join(dir, "link")))
	root, err := os.OpenRoot(dir)
	must(t, err)
	defer root.Close()
	if _, err := ReadRegularAt(root, "link", 10); err == nil {
		t.Error("read through a symlink")
	}
	if data, err := ReadRegularAt(root, "real", 10); err != nil || string(data) != "x" {
		t.Errorf("real: %q, %v", data, err)
	}
}

// WriteAtomic sets the mode asked for, whatever the old file's mode.
func TestWriteAtomicMode(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	must(t, os.WriteFile(name, []byte("old"), 0o666))
	must(t, os.Chmod(name, 0o666))
	root, err := os.OpenRoot(dir)
	must(t, err)
	defer root.Close()
	must(t, WriteAtomic(root, "f", []byte("new"), 0o600))
	fi, err := os.Stat(name)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(name); string(data) != "new" {
		t.Errorf("content %q", data)
	}
}

// An odd file is moved aside and kept, never deleted; a second one in the
// same second does not replace the first.
func TestAsideIfOdd(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	must(t, err)
	defer root.Close()
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "lock")))
	must(t, AsideIfOdd(root, dir, "lock", nil))
	must(t, os.Symlink("/etc/shadow", filepath.Join(dir, "lock")))
	must(t, AsideIfOdd(root, dir, "lock", nil))
	kept, _ := filepath.Glob(filepath.Join(dir, "lock.corrupt-*"))
	if len(kept) != 2 {
		t.Errorf("kept %v, want both links", kept)
	}
	must(t, os.WriteFile(filepath.Join(dir, "regular"), nil, 0o600))
	must(t, AsideIfOdd(root, dir, "regular", nil))
	if _, err := os.Lstat(filepath.Join(dir, "regular")); err != nil {
		t.Error("a regular file was moved aside")
	}
}
