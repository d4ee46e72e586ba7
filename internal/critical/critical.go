// Package critical decides which DKMS modules the machine cannot boot
// without, and says why for each: a kernel lacking one of them must not
// become the default boot entry (issue: a ZFS-on-root machine whose new
// kernel's initramfs lacks zfs ends in an initramfs shell).
//
// A module is boot-critical when one of the kernel modules it builds
//   - is in the initramfs of the reference kernel (the running one, or
//     the newest complete one): initramfs-tools put it there because some
//     hook or /etc/initramfs-tools/modules asked for it;
//   - is listed in /etc/initramfs-tools/modules;
//   - provides the file system type of / or /boot (zfs);
//
// or the administrator lists it in CRITICAL_MODULES; NOT_CRITICAL_MODULES
// overrides all of these.
package critical

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
)

// Lister lists the paths inside an initramfs image (lsinitramfs).
type Lister interface {
	List(ctx context.Context, image string) ([]string, error)
}

// Finder finds the boot-critical modules of a machine.
type Finder struct {
	Paths     paths.Paths
	Initramfs Lister
	Arch      string
	Report    *report.Reporter
}

// Reasons maps a DKMS module name to why the machine cannot boot without it.
type Reasons map[string][]string

// Names lists the critical modules, sorted.
func (r Reasons) Names() []string {
	out := make([]string, 0, len(r))
	for m := range r {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Built maps each DKMS module name to the kernel modules it builds, each
// spelt as KernelModule spells it.
type Built map[string][]string

// Names lists the DKMS modules, sorted.
func (b Built) Names() []string { return slices.Sorted(maps.Keys(b)) }

// Builds finds the kernel modules every module of tree builds, reading
// its dkms.conf as for kernel.
func (f Finder) Builds(tree dkms.Tree, kernel string) Built {
	out := Built{}
	for _, name := range tree.Names() {
		out[name] = f.kernelModules(tree, name, kernel)
	}
	return out
}

// Find decides, for every module of built, whether it is boot-critical.
// reference is the kernel whose initramfs is looked at ("" for none).
func (f Finder) Find(ctx context.Context, built Built, s config.Settings, reference string) Reasons {
	out := Reasons{}
	add := func(m, why string) { out[m] = append(out[m], why) }
	inInitrd := f.initramfsModules(ctx, reference)
	listed := f.listedModules()
	fsTypes := f.bootFileSystems()
	for _, name := range built.Names() {
		kmods := built[name]
		for _, k := range kmods {
			if inInitrd[k] {
				add(name, "in the initramfs of "+report.Name(reference))
				break
			}
		}
		for _, k := range kmods {
			if listed[k] {
				add(name, "listed in "+f.Paths.Rel(f.Paths.InitramfsModules()))
				break
			}
		}
		for _, mp := range []string{"/", "/boot"} {
			for _, k := range kmods {
				if fsTypes[mp] == k {
					add(name, "provides the "+k+" file system of "+mp)
				}
			}
		}
		for _, c := range s.Critical {
			if c == name || slices.Contains(kmods, KernelModule(c)) {
				add(name, "listed in CRITICAL_MODULES of "+f.Paths.Rel(f.Paths.Defaults()))
				break
			}
		}
		for _, c := range s.NotCritical {
			if c == name || slices.Contains(kmods, KernelModule(c)) {
				delete(out, name)
				break
			}
		}
	}
	return out
}

// kernelModules names the kernel modules DKMS module name builds: the .ko
// files dkms installed for any kernel, BUILT_MODULE_NAME, and the DKMS
// name itself (zfs builds zfs.ko).
func (f Finder) kernelModules(tree dkms.Tree, name, kernel string) []string {
	set := map[string]bool{KernelModule(name): true}
	for _, m := range tree.Versions(name) {
		files, _ := filepath.Glob(filepath.Join(f.Paths.DKMSTree(), name, m.Version, "*", "*", "module", "*.ko*"))
		for _, file := range files {
			set[moduleName(file)] = true
		}
		if c, err := dkms.ReadConf(m.ConfFile(f.Paths.DKMSTree()), f.Paths.DKMSConfDir(), m.Name, m.Version, kernel, f.Arch); err == nil {
			for _, n := range c.List("BUILT_MODULE_NAME") {
				if c.Known("BUILT_MODULE_NAME") {
					set[KernelModule(n)] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// moduleName is the module name of a .ko file: "zfs" for .../zfs.ko.zst.
func moduleName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i > 0 {
		base = base[:i]
	}
	return KernelModule(base)
}

// KernelModule spells a kernel module name one way: the kernel and kmod
// treat - and _ alike (nvidia-drm is nvidia_drm, as /proc/modules shows it).
func KernelModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// initramfsModules lists the kernel modules in reference's initramfs.
func (f Finder) initramfsModules(ctx context.Context, reference string) map[string]bool {
	set := map[string]bool{}
	if reference == "" {
		return set
	}
	image := f.Paths.Initrd(reference)
	if !paths.Exists(image) {
		return set
	}
	files, err := f.Initramfs.List(ctx, f.Paths.Rel(image))
	if err != nil {
		f.Report.Warnf("cannot tell which DKMS modules are in the initramfs of %s: %v", report.Name(reference), err)
		return set
	}
	for _, file := range files {
		if strings.Contains(path.Base(file), ".ko") {
			set[moduleName(file)] = true
		}
	}
	return set
}

// listedModules reads /etc/initramfs-tools/modules: one module per line,
// with optional arguments, # comments.
func (f Finder) listedModules() map[string]bool {
	set := map[string]bool{}
	data, err := file.ReadRegular(f.Paths.InitramfsModules(), 1<<20)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.Report.Warnf("cannot read %s: %v", f.Paths.Rel(f.Paths.InitramfsModules()), err)
		}
		return set
	}
	// Whole lines, however long: bufio.Scanner stops at a 64 KiB line and
	// would silently drop every module listed after it.
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) > 0 && !strings.HasPrefix(fields[0], "#") {
			set[KernelModule(fields[0])] = true
		}
	}
	return set
}

// bootFileSystems maps "/" and, when it is mounted apart, "/boot" to
// their file system types, from /proc/self/mounts (the last mount on a
// point is the visible one).
func (f Finder) bootFileSystems() map[string]string {
	out := map[string]string{}
	mounts, _, err := file.OpenRegular(f.Paths.Mounts())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.Report.Warnf("cannot tell the file systems of / and /boot: %v", err)
		}
		return out
	}
	defer mounts.Close()
	// Line by line, with no bound on the whole: a host with thousands of
	// container mounts has a mounts file of many MB, and the "/ zfs" line
	// may come last. Of a line longer than the buffer (an overlay's
	// options run past 64 KiB) only its start is needed: device, mount
	// point and type come first.
	r := bufio.NewReaderSize(mounts, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		fields := strings.Fields(string(line))
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		if len(fields) >= 3 {
			if mp := unescapeMount(fields[1]); mp == "/" || mp == "/boot" {
				out[mp] = fields[2]
			}
		}
		if err != nil {
			if err != io.EOF {
				f.Report.Warnf("reading %s: %v", f.Paths.Rel(f.Paths.Mounts()), err)
			}
			return out
		}
	}
}

// unescapeMount undoes the octal escapes of /proc/self/mounts (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
