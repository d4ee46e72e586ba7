package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The build lock excludes a second holder until the first releases it.
func TestBuildLockExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := TakeBuild(context.Background(), dir, 0, nil, nil)
	must(t, err)
	waited := false
	if _, err := TakeBuild(context.Background(), dir, 100*time.Millisecond, nil, func() { waited = true }); !errors.Is(err, ErrTimeout) || !waited {
		t.Fatalf("second holder: %v (waiting called: %v)", err, waited)
	}
	l.Unlock()
	l, err = TakeBuild(context.Background(), dir, 0, nil, nil)
	must(t, err)
	l.Unlock()
}

// A lock directory that is a symlink is refused: nothing is created through it.
func TestBuildLockRefusesLinkedDir(t *testing.T) {
	tmp := t.TempDir()
	must(t, os.Mkdir(filepath.Join(tmp, "elsewhere"), 0o700))
	must(t, os.Symlink("elsewhere", filepath.Join(tmp, "run")))
	if _, err := TakeBuild(context.Background(), filepath.Join(tmp, "run"), 0, nil, nil); err == nil {
		t.Fatal("a symlinked lock directory was used")
	}
	if _, err := os.Lstat(filepath.Join(tmp, "elsewhere", "build.lock")); err == nil {
		t.Error("build.lock was created through the link")
	}
}

func TestBuildLockNote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := TakeBuild(context.Background(), dir, 0, nil, nil)
	must(t, err)
	if l.Previous() != "" {
		t.Errorf("fresh lock has a note: %q", l.Previous())
	}
	l.Note("pgid 42 dkms install a/1 for k")
	l.f.Close() // the holder dies without Unlock
	l, err = TakeBuild(context.Background(), dir, 0, nil, nil)
	must(t, err)
	if l.Previous() != "pgid 42 dkms install a/1 for k" {
		t.Errorf("note = %q", l.Previous())
	}
	l.Unlock()
	l, err = TakeBuild(context.Background(), dir, 0, nil, nil)
	must(t, err)
	defer l.Unlock()
	if l.Previous() != "" {
		t.Errorf("note after Unlock = %q", l.Previous())
	}
}

// A note that cannot be written is an error, not silence: a lost note
// defeats finding a killed dkms-guard's builds.
func TestBuildLockNoteError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := TakeBuild(context.Background(), dir, 0, nil, nil)
	must(t, err)
	defer l.Unlock()
	ro, err := os.Open(filepath.Join(dir, "build.lock"))
	must(t, err)
	l.f, ro = ro, l.f // as a full or broken file system would answer
	defer ro.Close()
	if err := l.Note("pgid 42 start 1 boot \"b\" dkms build a/1 for k"); err == nil {
		t.Error("a note that was not written gave no error")
	}
}
