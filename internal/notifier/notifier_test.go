package notifier

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	then = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now  = time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
)

// stamped tells whether the stamp's mtime is t.
func stamped(t *testing.T, p paths.Paths, at time.Time) bool {
	t.Helper()
	fi, err := os.Stat(p.UpdateNotifierStamp())
	must(t, err)
	return fi.ModTime().Equal(at)
}

func TestHookLifecycle(t *testing.T) {
	p := paths.New(t.TempDir())
	hook := filepath.Join(p.UpdateNotifierHooks(), HookName)
	lines := []string{"dkms-guard: 6.1.0-56-amd64 lacks DKMS modules that did not build: wifi/2.0", "", "Details: /var/lib/dkms-guard.notice"}

	// No update-notifier: nothing is created.
	must(t, Write(p, lines, now))
	if _, err := os.Stat(filepath.Dir(hook)); !os.IsNotExist(err) {
		t.Fatalf("created update-notifier's directory: %v", err)
	}

	must(t, os.MkdirAll(p.UpdateNotifierHooks(), 0o755))
	must(t, os.WriteFile(p.UpdateNotifierStamp(), nil, 0o644))
	must(t, os.Chtimes(p.UpdateNotifierStamp(), then, then))
	must(t, Write(p, lines, now))
	data, err := os.ReadFile(hook)
	must(t, err)
	want := "Name: dkms-guard: DKMS modules need attention\nPriority: High\n" +
		"Description: dkms-guard: 6.1.0-56-amd64 lacks DKMS modules that did not build: wifi/2.0\n Details: /var/lib/dkms-guard.notice\n"
	if string(data) != want {
		t.Errorf("hook:\n%s", data)
	}
	if fi, _ := os.Stat(hook); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	if !stamped(t, p, now) {
		t.Error("stamp not touched after the hook was written")
	}

	// The same text again: neither the hook nor the stamp changes.
	must(t, os.Chtimes(p.UpdateNotifierStamp(), then, then))
	must(t, os.Chtimes(hook, then, then))
	must(t, Write(p, lines, now))
	if fi, _ := os.Stat(hook); !fi.ModTime().Equal(then) || !stamped(t, p, then) {
		t.Error("an unchanged hook was rewritten or the stamp touched")
	}

	// Nothing to say: the hook goes, the stamp is touched.
	must(t, Write(p, nil, now))
	if _, err := os.Stat(hook); !os.IsNotExist(err) {
		t.Errorf("hook still there: %v", err)
	}
	if !stamped(t, p, now) {
		t.Error("stamp not touched after the hook was removed")
	}
}
