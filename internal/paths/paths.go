// Package paths is the one place where dkms-guard turns a root directory into
// the file names it reads and writes.
//
// Every path dkms-guard touches, /proc and the boot id included, is built
// here from a single root (DKMS_GUARD_ROOT or --root, "/" on a real system),
// so a test can fake "apt died" or "the machine rebooted" by writing a file
// under a temporary root. This mirrors dpkg's DPKG_ROOT semantics: the root
// is a prefix, not a chroot.
package paths

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Paths holds the root and derives every file name from it.
type Paths struct {
	Root string
}

// New returns the paths below root; an empty root means "/".
func New(root string) Paths {
	if root == "" {
		root = "/"
	}
	return Paths{Root: filepath.Clean(root)}
}

func (p Paths) join(elem ...string) string {
	return filepath.Join(append([]string{p.Root}, elem...)...)
}

// StateDir holds dkms-guard's state files (0700, root-only).
func (p Paths) StateDir() string { return p.join("var/lib/dkms-guard") }

// KeptDir holds the kept builds' dkms archives (package keep).
func (p Paths) KeptDir() string { return p.join("var/lib/dkms-guard/kept") }

// RunDir holds the build lock: in /run, where only root creates files and
// which works whatever state /var is in.
func (p Paths) RunDir() string { return p.join("run/dkms-guard") }

// LogDir holds dkms-guard's copy of every build log, one directory per kernel.
func (p Paths) LogDir() string { return p.join("var/log/dkms-guard") }

// BuildLog is the log of one module build for one kernel. Module names and
// versions are made safe for a file name by the caller (see SafeName).
func (p Paths) BuildLog(kernel, module, version string) string {
	return filepath.Join(p.LogDir(), SafeName(kernel), SafeName(module)+"-"+SafeName(version)+".log")
}

// Notice is the world-readable notification file: present while some kernel
// lacks a DKMS module because its build failed, removed once all is well.
func (p Paths) Notice() string { return p.join("var/lib/dkms-guard.notice") }

// DKMSTree is dkms's own tree ($dkms_tree in /usr/sbin/dkms).
func (p Paths) DKMSTree() string { return p.join("var/lib/dkms") }

// SourceTree is where DKMS packages ship their sources ($source_tree).
func (p Paths) SourceTree() string { return p.join("usr/src") }

// ModulesDir is /lib/modules: one directory per installed kernel.
func (p Paths) ModulesDir() string { return p.join("lib/modules") }

// ModulesDep is depmod's output for kernel: it exists once the kernel's
// image is installed.
func (p Paths) ModulesDep(kernel string) string {
	return filepath.Join(p.ModulesDir(), kernel, "modules.dep")
}

// SystemMap is the kernel's symbol map, which depmod checks symbols against.
func (p Paths) SystemMap(kernel string) string { return p.join("boot", "System.map-"+kernel) }

// DKMSProgram is the dkms script, read (never run from here) to learn
// which options it takes.
func (p Paths) DKMSProgram() string { return p.join("usr/sbin/dkms") }

// MOKKey and MOKCert are dkms's module signing key and certificate (its
// defaults); dkms creates both on its first signing build, unlocked.
func (p Paths) MOKKey() string  { return p.join("var/lib/dkms/mok.key") }
func (p Paths) MOKCert() string { return p.join("var/lib/dkms/mok.pub") }

// KernelHeaders is the directory whose include/ tells that a kernel's headers
// are installed, the same test dkms_autoinstaller's _check_kernel_dir makes.
func (p Paths) KernelHeaders(kernel string) string {
	return filepath.Join(p.ModulesDir(), kernel, "build")
}

// KernelConfig is the kernel's .config inside its headers, read for
// BUILD_EXCLUSIVE_CONFIG.
func (p Paths) KernelConfig(kernel string) string {
	return filepath.Join(p.KernelHeaders(kernel), ".config")
}

// KernelImage tells whether a kernel can be booted at all.
func (p Paths) KernelImage(kernel string) string { return p.join("boot", "vmlinuz-"+kernel) }

// NoAutoinstall is the flag file both dkms_autoinstaller and common.postinst honour.
func (p Paths) NoAutoinstall() string { return p.join("etc/dkms/no-autoinstall") }

// DKMSConfDir holds the per-module dkms.conf overrides that dkms's read_conf sources.
func (p Paths) DKMSConfDir() string { return p.join("etc/dkms") }

// Defaults is the administrator's settings file (a conffile).
func (p Paths) Defaults() string { return p.join("etc/default/dkms-guard") }

// InitramfsModules is initramfs-tools' list of modules to include.
func (p Paths) InitramfsModules() string { return p.join("etc/initramfs-tools/modules") }

// Initrd is a kernel's initramfs image.
func (p Paths) Initrd(kernel string) string { return p.join("boot", "initrd.img-"+kernel) }

// Mounts lists the mounted file systems (for the file system of / and /boot).
func (p Paths) Mounts() string { return p.join("proc/self/mounts") }

// ProcCmdline is /proc/PID/cmdline, read to tell which kernel hook
// directory run-parts is running.
func (p Paths) ProcCmdline(pid int) string {
	return p.join("proc", strconv.Itoa(pid), "cmdline")
}

// KernelHookDir is /etc/kernel/NAME.d, where the kernel packages' hooks live.
func (p Paths) KernelHookDir(name string) string { return p.join("etc/kernel", name+".d") }

// GrubConfig is the generated GRUB menu, read for its entry ids.
func (p Paths) GrubConfig() string { return p.join("boot/grub/grub.cfg") }

// GrubLinuxScript is grub-mkconfig's Linux menu generator, read to tell
// which GRUB release orders the menu (host.GrubOrder).
func (p Paths) GrubLinuxScript() string { return p.join("etc/grub.d/10_linux") }

// GrubDefaults is the administrator's GRUB settings file.
func (p Paths) GrubDefaults() string { return p.join("etc/default/grub") }

// GrubDefaultsDir holds GRUB settings snippets, sourced after GrubDefaults.
func (p Paths) GrubDefaultsDir() string { return p.join("etc/default/grub.d") }

// GrubPin is dkms-guard's GRUB_DEFAULT snippet; "zz-" so that it is
// sourced last (grub-mkconfig sources grub.d/*.cfg in name order).
func (p Paths) GrubPin() string { return filepath.Join(p.GrubDefaultsDir(), "zz-dkms-guard.cfg") }

// RebootRequired is the flag file update-notifier and unattended-upgrades read.
func (p Paths) RebootRequired() string { return p.join("run/reboot-required") }

// DivertedAutoinstaller is where dpkg-divert moved dkms's own autoinstaller.
func (p Paths) DivertedAutoinstaller() string {
	return p.join("usr/lib/dkms/dkms_autoinstaller.distrib")
}

// BootID changes at every boot; a state file from another boot is stale.
func (p Paths) BootID() string { return p.join("proc/sys/kernel/random/boot_id") }

// OSRelease is the running kernel's release (uname -r).
func (p Paths) OSRelease() string { return p.join("proc/sys/kernel/osrelease") }

// ProcStat is /proc/PID/stat, read to find apt and to tell whether it still runs.
func (p Paths) ProcStat(pid int) string {
	return p.join("proc", strconv.Itoa(pid), "stat")
}

// Rel returns name relative to the root, as a user would see it on a real
// system ("/var/log/..."), for messages.
func (p Paths) Rel(name string) string {
	if p.Root == "/" {
		return name
	}
	if r, err := filepath.Rel(p.Root, name); err == nil && !strings.HasPrefix(r, "..") {
		return "/" + r
	}
	return name
}

// SafeName turns a module name, version or kernel release into one file
// name component: dkms accepts odd names, our log files must not escape
// their directory or carry control characters. It is one-to-one: a name
// that had to be changed gets a hash of the original ("my mod" and
// "my_mod" never share a log).
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '+', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == s && out != "" && out != "." && out != ".." {
		return out
	}
	sum := sha256.Sum256([]byte(s))
	return out + "~" + hex.EncodeToString(sum[:6])
}

// Exists tells whether name exists (following links): the one existence
// test dkms-guard makes, as dkms's own `[ -e ]` and `[ -d ]` do.
func Exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// KernelEntryToken names this installation's boot entries for
// kernel-install (kernel-install(8), --entry-token=auto): its first choice.
func (p Paths) KernelEntryToken() string { return p.join("etc/kernel/entry-token") }

// MachineID is kernel-install's second choice of entry token.
func (p Paths) MachineID() string { return p.join("etc/machine-id") }

// OSReleaseFiles are os-release(5)'s two places, in the order it reads
// them: its ID is kernel-install's last choice of entry token.
func (p Paths) OSReleaseFiles() []string {
	return []string{p.join("etc/os-release"), p.join("usr/lib/os-release")}
}

// LoaderEntryDefault is the EFI variable `bootctl set-default` sets
// (systemd-boot's vendor GUID), in efivarfs.
func (p Paths) LoaderEntryDefault() string {
	return p.join("sys/firmware/efi/efivars/LoaderEntryDefault-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")
}

// ProcModules lists the kernel modules loaded in the running kernel.
func (p Paths) ProcModules() string { return p.join("proc/modules") }

// KernelCmdline is the running kernel's command line (modules-load=).
func (p Paths) KernelCmdline() string { return p.join("proc/cmdline") }

// EtcModules is Debian's list of modules to load at boot (kmod; on
// systemd machines read through /etc/modules-load.d/modules.conf).
func (p Paths) EtcModules() string { return p.join("etc/modules") }

// ModulesLoadDirs are modules-load.d(5)'s directories, in systemd's order
// of precedence: a file name in an earlier one masks the same name in a
// later one.
func (p Paths) ModulesLoadDirs() []string {
	return []string{
		p.join("etc/modules-load.d"), p.join("run/modules-load.d"), p.join("usr/local/lib/modules-load.d"),
		p.join("usr/lib/modules-load.d"), p.join("lib/modules-load.d"),
	}
}

// InitRoot is pid 1's root directory: another directory than the root
// means a chroot (systemd-detect-virt --chroot compares the two).
func (p Paths) InitRoot() string { return p.join("proc/1/root") }

// InitEnviron is pid 1's environment: container=... in a container
// (systemd-nspawn, LXC).
func (p Paths) InitEnviron() string { return p.join("proc/1/environ") }

// ContainerFlags are files container managers leave inside a container:
// systemd's, Docker's, Podman's.
func (p Paths) ContainerFlags() []string {
	return []string{p.join("run/systemd/container"), p.join(".dockerenv"), p.join("run/.containerenv")}
}

// AptConfDir is apt's configuration snippets directory (Dir::Etc::parts).
func (p Paths) AptConfDir() string { return p.join("etc/apt/apt.conf.d") }

// PinnedKernelAptConf keeps the kernel dkms-guard pins from apt's
// autoremoval (APT::NeverAutoRemove), as apt's own 01autoremove-kernels
// did; it exists exactly while a pin stands.
func (p Paths) PinnedKernelAptConf() string {
	return filepath.Join(p.AptConfDir(), "01dkms-guard-pinned-kernel")
}

// Under is dir, an absolute path from the settings (METRICS_DIR), below
// the root.
func (p Paths) Under(dir string) string { return p.join(dir) }

// UpdateNotifierHooks is update-notifier's directory of hooks to show
// users (Ubuntu desktops; its HOOKS document).
func (p Paths) UpdateNotifierHooks() string { return p.join("var/lib/update-notifier/user.d") }

// UpdateNotifierStamp is the file whose change makes update-notifier read
// its hooks again (apt's 99update-notifier touches it after dpkg).
func (p Paths) UpdateNotifierStamp() string { return p.join("var/lib/update-notifier/dpkg-run-stamp") }
