// Package notifier keeps dkms-guard's hook for update-notifier, which
// shows Ubuntu desktop users what needs their attention after an upgrade.
//
// Policy, from update-notifier's HOOKS document (/usr/share/doc/
// update-notifier/HOOKS): a hook is an RFC 822 file in
// /var/lib/update-notifier/user.d/ with a unique Name and a Description
// (continuation lines start with a space), an optional Priority; it is
// read again when /var/lib/update-notifier/dpkg-run-stamp changes, and
// shown to administrators (OnlyAdminUsers defaults to true). update-notifier
// remembers the hooks a user has seen (file, mtime, checksum) and shows a
// changed one again.
//   - Only where user.d exists: update-notifier is not in Debian, and
//     dkms-guard never creates its directories.
//   - No DontShowAfterReboot: the note must still show after the reboot
//     into the kernel that lacks the module (or the one kept, or one that
//     runs an older build kept in place of a newer version).
//   - The file is rewritten, and the stamp touched, only when the text
//     changes: a hook rewritten the same on every apt run would keep its
//     content but churn its mtime.
//   - Removed, with the stamp touched, once no kernel lacks a module or
//     runs a kept build.
package notifier

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
)

// HookName is dkms-guard's file in user.d.
const HookName = "dkms-guard-module-missing"

// maxHook bounds the read of an existing hook: a few lines.
const maxHook = 64 << 10

// Text is the hook file for lines, the summary people should read (the
// notice's opening lines): nil when there is nothing to say.
func Text(lines []string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		if l == "" {
			continue // an empty continuation line would end the field
		}
		if b.Len() == 0 {
			b.WriteString("Name: dkms-guard: DKMS modules need attention\nPriority: High\nDescription: " + l + "\n")
			continue
		}
		b.WriteString(" " + l + "\n")
	}
	if b.Len() == 0 {
		return nil
	}
	return b.Bytes()
}

// Write keeps the hook saying lines, or removes it when lines is empty,
// and touches the stamp when the hook changed.
func Write(p paths.Paths, lines []string, now time.Time) error {
	dir := p.UpdateNotifierHooks()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil // no update-notifier here
	}
	name := filepath.Join(dir, HookName)
	text := Text(lines)
	old, err := file.ReadRegular(name, maxHook)
	switch {
	case errors.Is(err, fs.ErrNotExist) && text == nil:
		return nil
	case err == nil && text != nil && bytes.Equal(old, text):
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("update-notifier hook: %w", err)
	}
	defer root.Close()
	if text == nil {
		if err := root.Remove(HookName); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing update-notifier hook %s: %w", p.Rel(name), err)
		}
	} else if err := file.WriteAtomic(root, HookName, text, 0o644); err != nil {
		return fmt.Errorf("writing update-notifier hook %s: %w", p.Rel(name), err)
	}
	return touch(p.UpdateNotifierStamp(), now)
}

// touch creates name or sets its times to now, inside its directory.
func touch(name string, now time.Time) error {
	root, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return fmt.Errorf("touching %s: %w", name, err)
	}
	defer root.Close()
	f, err := root.OpenFile(filepath.Base(name), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("touching %s: %w", name, err)
	}
	f.Close()
	if err := root.Chtimes(filepath.Base(name), now, now); err != nil {
		return fmt.Errorf("touching %s: %w", name, err)
	}
	return nil
}
