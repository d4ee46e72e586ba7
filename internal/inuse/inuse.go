// Package inuse decides which DKMS modules the machine uses, and says why
// for each: a kernel lacking one of them should not become the default
// boot entry either (issue 15: stock dkms's failed build keeps the old
// kernel the default, so the GPU driver or the VPN module still loads
// after the next reboot).
//
// A DKMS module is in use when a kernel module it builds
//   - is loaded in the running kernel (/proc/modules);
//   - is loaded at boot by configuration: /etc/modules, a modules-load.d(5)
//     file (systemd's precedence: a file name in an earlier directory masks
//     the same name in a later one, a link to /dev/null masks it), or
//     modules-load= / rd.modules-load= on the kernel command line.
//
// A kernel module loaded now counts for a DKMS module only when dkms
// installed that DKMS module for the running kernel: otherwise what is
// loaded is the kernel's own module of that name (a backport package's
// driver, never installed here).
//
// Inside a chroot or a container (an image build, debootstrap) /proc is
// the host's kernel's: there only the files count.
package inuse

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
)

// Finder finds the DKMS modules a machine uses.
type Finder struct {
	Paths  paths.Paths
	Report *report.Reporter
	// Running tells whether dkms installed a DKMS module for the running
	// kernel; nil when the running kernel is not known: then every loaded
	// module counts.
	Running func(module string) bool
}

// Reasons maps a DKMS module name to why it is in use.
type Reasons map[string][]string

// maxList bounds every file read here: a few lines per module.
const maxList = 4 << 20

// Find decides, for every module of built, whether it is in use.
func (f Finder) Find(built critical.Built) Reasons {
	confined := f.Confined()
	now := map[string]bool{}
	if !confined {
		for _, m := range f.list(f.Paths.ProcModules()) {
			now[critical.KernelModule(m)] = true
		}
	}
	atBoot := f.atBoot(confined)
	out := Reasons{}
	add := func(name, why string) {
		if !slices.Contains(out[name], why) {
			out[name] = append(out[name], why)
		}
	}
	for _, name := range built.Names() {
		if slices.ContainsFunc(built[name], func(k string) bool { return now[k] }) && (f.Running == nil || f.Running(name)) {
			add(name, "loaded now")
		}
		for _, k := range built[name] {
			for _, why := range atBoot[k] {
				add(name, why)
			}
		}
	}
	return out
}

// atBoot maps each kernel module loaded at boot to why: the files, then
// the command line (unless confined: it is the host's).
func (f Finder) atBoot(confined bool) map[string][]string {
	out := map[string][]string{}
	add := func(module, why string) {
		m := critical.KernelModule(module)
		if !slices.Contains(out[m], why) {
			out[m] = append(out[m], why)
		}
	}
	for _, src := range f.bootFiles() {
		for _, m := range src.modules {
			add(m, "loaded at boot by "+f.Paths.Rel(src.name))
		}
	}
	if !confined {
		for _, kv := range f.cmdline() {
			add(kv[1], "loaded at boot by "+kv[0]+"= on the kernel command line")
		}
	}
	return out
}

// Confined tells whether dkms-guard runs in a chroot or a container,
// where /proc describes the host's kernel, not this system's. The tests
// are systemd-detect-virt's: pid 1's root is another directory (a
// chroot), or a container manager left its mark.
func (f Finder) Confined() bool {
	if init, err := os.Stat(f.Paths.InitRoot()); err == nil {
		if root, err := os.Stat(f.Paths.Root); err == nil && !os.SameFile(init, root) {
			return true
		}
	}
	for _, name := range f.Paths.ContainerFlags() {
		if paths.Exists(name) {
			return true
		}
	}
	env, err := file.ReadRegular(f.Paths.InitEnviron(), maxList)
	if err != nil {
		return false
	}
	for _, v := range strings.Split(string(env), "\x00") {
		if c, ok := strings.CutPrefix(v, "container="); ok && c != "" {
			return true
		}
	}
	return false
}

// source is one file that loads modules at boot.
type source struct {
	name    string
	modules []string
}

// bootFiles reads /etc/modules and the modules-load.d files that count.
// Debian links /etc/modules-load.d/modules.conf to ../modules: that file
// is read once, under the name the administrator edits.
func (f Finder) bootFiles() []source {
	var out []source
	if mods := f.list(f.Paths.EtcModules()); len(mods) > 0 {
		out = append(out, source{f.Paths.EtcModules(), mods})
	}
	etcModules, _ := os.Stat(f.Paths.EtcModules())
	seen := map[string]bool{}
	for _, dir := range f.Paths.ModulesLoadDirs() {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
				f.Report.Warnf("cannot tell which modules %s loads at boot: %v", f.Paths.Rel(dir), err)
			}
			continue
		}
		for _, en := range ents {
			// systemd lists neither hidden files nor directories: they
			// load nothing and mask nothing.
			if !strings.HasSuffix(en.Name(), ".conf") || strings.HasPrefix(en.Name(), ".") || en.IsDir() || seen[en.Name()] {
				continue
			}
			seen[en.Name()] = true // masks the same name in later directories
			name := filepath.Join(dir, en.Name())
			fi, err := os.Stat(name)
			if err != nil || fi.Mode()&fs.ModeDevice != 0 {
				continue // a dangling link, or masked by a link to /dev/null
			}
			if etcModules != nil && os.SameFile(fi, etcModules) {
				continue
			}
			if mods := f.list(name); len(mods) > 0 {
				out = append(out, source{name, mods})
			}
		}
	}
	return out
}

// cmdline lists the modules modules-load= and rd.modules-load= name on
// the kernel command line (also spelt with _), each with its key.
func (f Finder) cmdline() [][2]string {
	data, err := file.ReadRegular(f.Paths.KernelCmdline(), maxList)
	if err != nil {
		f.unreadable(f.Paths.KernelCmdline(), err)
		return nil
	}
	var out [][2]string
	for _, word := range strings.Fields(string(data)) {
		key, val, ok := strings.Cut(strings.ReplaceAll(word, `"`, ""), "=")
		// systemd compares a key's - and _ alike: modules_load= counts.
		if k := strings.ReplaceAll(key, "_", "-"); !ok || (k != "modules-load" && k != "rd.modules-load") {
			continue
		}
		for _, m := range strings.Split(val, ",") {
			if m != "" {
				out = append(out, [2]string{key, m})
			}
		}
	}
	return out
}

// list reads a list of modules, one a line, each line's first field
// (/proc/modules and /etc/modules follow the name with more fields: size
// and use count; module arguments): empty lines and lines starting with #
// or ; are comments (modules-load.d(5)).
func (f Finder) list(name string) []string {
	data, err := file.ReadRegular(name, maxList)
	if err != nil {
		f.unreadable(name, err)
		return nil
	}
	var out []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		out = append(out, strings.Fields(line)[0])
	}
	return out
}

// unreadable warns about a file that exists but cannot be read; a missing
// one (no /proc in a chroot) and one root's state keeps from a user
// (status run by a user) are silent.
func (f Finder) unreadable(name string, err error) {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return
	}
	f.Report.Warnf("cannot tell which modules are in use from %s: %v", f.Paths.Rel(name), err)
}
