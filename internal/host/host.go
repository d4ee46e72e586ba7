// Package host reads facts about the machine dkms-guard runs on, below the
// injectable root: the installed kernels and their headers, the running
// kernel, the boot id, and the apt process a hook runs under (proc.go).
//
// It only reads; it never runs a program.
package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
)

// Host reads the machine below Paths.Root.
type Host struct {
	Paths paths.Paths
}

// Kernels lists the kernels in /lib/modules, newest first in the order
// this machine's GRUB lists them (Grub, SortGrub): the first is the one
// GRUB's default entry boots.
func (h Host) Kernels() ([]string, error) {
	ents, err := os.ReadDir(h.Paths.ModulesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing kernels: %w", err)
	}
	var out []string
	for _, en := range ents {
		if en.IsDir() {
			out = append(out, en.Name())
		}
	}
	order, topLevel := h.Grub()
	return SortGrub(order, out, topLevel), nil
}

// HasHeaders is dkms_autoinstaller's _check_kernel_dir: headers are there
// when /lib/modules/K/build/include exists.
func (h Host) HasHeaders(kernel string) bool {
	return paths.Exists(filepath.Join(h.Paths.KernelHeaders(kernel), "include"))
}

// Bootable tells whether the kernel has an image in /boot.
func (h Host) Bootable(kernel string) bool { return paths.Exists(h.Paths.KernelImage(kernel)) }

// BootID is this boot's id, "" when it cannot be read.
func (h Host) BootID() string { return readTrimmed(h.Paths.BootID()) }

// Release is the running kernel's release (uname -r), "" when unknown.
func (h Host) Release() string { return readTrimmed(h.Paths.OSRelease()) }

func readTrimmed(name string) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// Machine is uname -m, dkms's default $arch. It is the real machine's,
// whatever the root: dkms-guard builds for the machine it runs on.
func Machine() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range u.Machine {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// HookDir tells which kernel hook directory (/etc/kernel/NAME.d) the
// process parent is running with run-parts, "" when it is not run-parts
// over such a directory. dkms's hooks exec dkms_autoinstaller, whose shim
// execs dkms-guard, so a hook's parent is run-parts itself.
func (h Host) HookDir(parent int) string {
	data, err := file.ReadRegular(h.Paths.ProcCmdline(parent), 1<<20)
	if err != nil {
		return ""
	}
	argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	if len(argv) < 2 || filepath.Base(argv[0]) != "run-parts" {
		return ""
	}
	dir := filepath.Clean(argv[len(argv)-1])
	if filepath.Dir(dir) != "/etc/kernel" {
		return ""
	}
	return strings.TrimSuffix(filepath.Base(dir), ".d")
}
