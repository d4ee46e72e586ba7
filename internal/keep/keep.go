// Package keep holds a DKMS module's last working build until its
// replacement is installed.
//
// Two upgrades remove a working module before anyone knows whether its
// replacement builds: a module package's upgrade (dh_dkms's prerm runs
// `dkms remove --all` before the new version is built) and a kernel image
// reinstalled at the same version (dkms 3.1.6+'s /etc/kernel/preinst.d/dkms
// runs `dkms kernel_preinst`, which unbuilds every module of that kernel).
// Before either, Keep archives each installed build with dkms's own
// `dkms mktarball`; after it, Settle puts back with `dkms ldtarball` and
// `dkms install --force` every build whose kernel was left without any
// version of the module, and drops the archives whose replacement is
// installed. Only dkms's own commands touch dkms's tree and /lib/modules.
//
// kept.json (state.KeptFile) lists the archives, which live in
// paths.KeptDir. Callers hold the state lock and the build lock.
package keep

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// DKMS is what keeping needs of dkms (dkms.Runner).
type DKMS interface {
	// MkTarball runs `dkms mktarball -m M -v V -k K --archive=ARCHIVE`,
	// with --binaries-only when binariesOnly.
	MkTarball(ctx context.Context, module, version, kernel string, binariesOnly bool, archive string, out io.Writer) error
	// LdTarball runs `dkms ldtarball --archive=ARCHIVE`, with --force when force.
	LdTarball(ctx context.Context, archive string, force bool, out io.Writer) error
	// InstallKept runs `dkms install --force --no-depmod -m M -v V -k K`.
	InstallKept(ctx context.Context, module, version, kernel string, out io.Writer) error
	// Remove runs `dkms remove -m M -v V -k K`, or `--all` when kernel is "".
	Remove(ctx context.Context, module, version, kernel string, out io.Writer) error
	// Depmod runs depmod for kernel as dkms does.
	Depmod(ctx context.Context, kernel string, out io.Writer) error
}

// Initramfs lists and updates initramfs images (initramfs.Tool).
type Initramfs interface {
	List(ctx context.Context, image string) ([]string, error)
	Update(ctx context.Context, kernel string, out io.Writer) error
}

// Checker tells whether built kernel modules (files, .ko or compressed)
// load into kernel: same vermagic, same symbol versions (kmod.Checker).
// The error says what differs.
type Checker interface {
	Fits(ctx context.Context, files []string, kernel string) error
}

// Owners tells which package ships each of paths, as seen from the root
// (dpkg.Query: dpkg-query -S); a path no package ships is absent.
type Owners interface {
	Owners(ctx context.Context, paths []string) (map[string]string, error)
}

// Want is one module version whose installed builds are to be kept.
type Want struct {
	Module  string
	Version string
	Package string   // its package, "" if none
	Kernels []string // the kernels it is installed for
	Why     state.KeepWhy
}

// Keeper keeps and puts back builds.
type Keeper struct {
	Paths     paths.Paths
	DKMS      DKMS
	Initramfs Initramfs
	Checker   Checker
	Report    *report.Reporter
	Now       func() time.Time
	Settings  config.Settings
	// Critical, when set, tells whether module is boot-critical for
	// kernel: putting it back then updates that kernel's initramfs even
	// if it did not hold the module before.
	Critical func(ctx context.Context, kernel, module string) bool
	// Owners, when set, is asked before a version put back is removed:
	// once a package ships /usr/src/M-V again (the administrator went
	// back to that version), the version is the package's and stays.
	Owners Owners
	// Log receives dkms's output (a file under paths.LogDir); nil
	// discards it. LogName is that file's name as messages show it.
	Log     io.Writer
	LogName string
}

// Keep archives the installed build of every want for each of its
// kernels, before dpkg runs (run: the apt run's id, "" outside apt). A
// build that cannot be kept is one W: line; keeping never stops dpkg.
// It does nothing when KEEP_WORKING_BUILDS=no.
func (k *Keeper) Keep(ctx context.Context, st *state.Store, wants []Want, run string) {
	if !k.Settings.KeepBuilds || len(wants) == 0 {
		return
	}
	var todo []state.KeptBuild
	for _, w := range wants {
		why := w.Why
		if why == "" {
			why = state.KeptForUpgrade
		}
		for _, kernel := range w.Kernels {
			todo = append(todo, state.KeptBuild{Module: w.Module, Version: w.Version, Kernel: kernel, Why: why, Package: w.Package, Run: run})
		}
	}
	k.keep(ctx, st, todo)
}

// KeepKernel keeps every module build installed for kernel (its image
// package is about to be reinstalled or upgraded at the same version),
// binaries only, and only where dkms's own preinst.d hook exists (dkms
// 3.1.6+: older dkms leaves the builds alone).
func (k *Keeper) KeepKernel(ctx context.Context, st *state.Store, tree dkms.Tree, kernel string) {
	if !k.Settings.KeepBuilds || !paths.Exists(filepath.Join(k.Paths.KernelHookDir("preinst"), "dkms")) {
		return
	}
	var todo []state.KeptBuild
	for _, m := range tree {
		if m.InstalledFor(kernel) {
			todo = append(todo, state.KeptBuild{Module: m.Name, Version: m.Version, Kernel: kernel, Why: state.KeptForKernel})
		}
	}
	k.keep(ctx, st, todo)
}

// Options say what one Settle may do.
type Options struct {
	// Kernels limits it to these kernels (nil: every kernel).
	Kernels []string
	// Removed are the packages removed in this run: their modules' kept
	// builds are dropped, never put back.
	Removed map[string]bool
	// Pending are the packages the apt run has yet to configure (a
	// kernel's hook runs in the middle of dpkg): their modules' kept
	// builds are neither put back nor dropped until post-invoke, when
	// their new version has had its chance to build.
	Pending map[string]bool
	// NoInitramfs: the caller's kernel hook runs before initramfs-tools'
	// (postinst.d), which builds the initramfs next.
	NoInitramfs bool
}

// keep archives each of todo (module, version, kernel, why, package,
// run) that dkms's tree shows installed and that is not kept yet, and
// saves kept.json once.
func (k *Keeper) keep(ctx context.Context, st *state.Store, todo []state.KeptBuild) {
	if len(todo) == 0 {
		return
	}
	kept, err := st.LoadKept()
	if err != nil {
		k.Report.Warnf("cannot keep the builds an upgrade may remove: %v", err)
		return
	}
	tree, err := dkms.ReadTree(k.Paths.DKMSTree())
	if err != nil {
		k.Report.Warnf("cannot keep the builds an upgrade may remove: %v", err)
		return
	}
	root, err := openDir(k.Paths, true)
	if err != nil {
		k.Report.Warnf("cannot keep the builds an upgrade may remove: %v", err)
		return
	}
	defer root.Close()
	changed := false
	images := map[string]map[string]bool{}
	for _, b := range todo {
		if ctx.Err() != nil {
			break // cancelled: save what is kept, say nothing more
		}
		if k.keepOne(ctx, &kept, root, tree, images, b) {
			changed = true
		}
	}
	if !changed {
		return
	}
	sortBuilds(kept.Builds)
	if err := st.Save(state.KeptFile, kept); err != nil {
		k.Report.Warnf("cannot keep the builds an upgrade may remove: %v", err)
	}
}

// keepOne archives b's build into root and records it in kept, unless
// it is not installed or is kept already; it tells whether kept changed.
// An upgrade's archive carries the source (dpkg deletes /usr/src/M-V and
// dkms 3.2 cannot load binaries without it); a kernel's has binaries only
// (the source stays).
func (k *Keeper) keepOne(ctx context.Context, kept *state.Kept, root *os.Root, tree dkms.Tree, images map[string]map[string]bool, b state.KeptBuild) bool {
	m, ok := tree.InstalledFor(b.Module, b.Kernel)
	if !ok || m.Version != b.Version {
		return false // nothing installed to keep
	}
	b.Source = b.Why != state.KeptForKernel
	i := slices.IndexFunc(kept.Builds, func(o state.KeptBuild) bool {
		return o.Module == b.Module && o.Version == b.Version && o.Kernel == b.Kernel
	})
	if i >= 0 {
		old := kept.Builds[i]
		// Kept already. Only a binaries-only archive not put back yet is
		// replaced by one with the source, which an upgrade needs.
		if haveArchive(root, old.Archive) && (old.Source || !b.Source || !old.PutBack.IsZero()) {
			return false
		}
	}
	b.Arch = m.Installed[b.Kernel]
	b.Archive = archiveName(*kept, b.Module, b.Version, b.Kernel)
	if i >= 0 && kept.Builds[i].Archive != "" {
		b.Archive = kept.Builds[i].Archive
		if haveArchive(root, b.Archive) {
			// A binaries-only archive replaced by one with the source:
			// written beside it, so that a failed mktarball loses
			// nothing; the old one, no longer listed, is swept later.
			b.Archive = strings.TrimSuffix(b.Archive, archiveSuffix) + "-src" + archiveSuffix
		}
	}
	log := k.log()
	fmt.Fprintf(log, "\n# dkms-guard: keeping %s for %s (%s)\n", report.MV(b.Module, b.Version), report.Name(b.Kernel), b.Why)
	full := filepath.Join(k.Paths.KeptDir(), b.Archive)
	if err := k.DKMS.MkTarball(ctx, b.Module, b.Version, b.Kernel, !b.Source, full, log); err != nil {
		removeArchive(root, b.Archive)
		k.Report.Warnf("cannot keep %s for %s: dkms mktarball: %v%s", report.MV(b.Module, b.Version), report.Name(b.Kernel), err, k.logRef())
		return false
	}
	size, err := archiveSize(root, b.Archive)
	if err != nil {
		removeArchive(root, b.Archive)
		k.Report.Warnf("cannot keep %s for %s: dkms mktarball left no archive: %v", report.MV(b.Module, b.Version), report.Name(b.Kernel), err)
		return false
	}
	b.Size = size
	b.InInitramfs = k.inInitramfs(ctx, images, b)
	b.Time = k.now()
	if i >= 0 {
		kept.Builds[i] = b
	} else {
		kept.Builds = append(kept.Builds, b)
	}
	return true
}

// inInitramfs tells whether the initramfs of b's kernel holds one of the
// kernel modules b's build made (dkms's M/V/K/ARCH/module/*.ko*; the DKMS
// name may differ: nvidia builds nvidia_drm). images caches each
// kernel's listing. When the image cannot be read, it says yes: an
// initramfs updated once too often costs seconds, one left without a
// boot module costs the boot.
func (k *Keeper) inInitramfs(ctx context.Context, images map[string]map[string]bool, b state.KeptBuild) bool {
	image := k.Paths.Initrd(b.Kernel)
	if !paths.Exists(image) || k.Initramfs == nil {
		return false
	}
	in, ok := images[b.Kernel]
	if !ok {
		files, err := k.Initramfs.List(ctx, k.Paths.Rel(image))
		if err != nil {
			in = nil
		} else {
			in = map[string]bool{}
			for _, f := range files {
				if name, ok := kernelModule(f); ok {
					in[name] = true
				}
			}
		}
		images[b.Kernel] = in
	}
	if in == nil {
		return true
	}
	for _, name := range k.builtModules(b) {
		if in[name] {
			return true
		}
	}
	return false
}

// builtModules names the kernel modules b's build made, spelt as
// critical.KernelModule spells them; the DKMS name itself when none is
// found (zfs builds zfs.ko).
func (k *Keeper) builtModules(b state.KeptBuild) []string {
	files, _ := filepath.Glob(filepath.Join(k.Paths.DKMSTree(), b.Module, b.Version, b.Kernel, "*", "module", "*.ko*"))
	var out []string
	for _, f := range files {
		if name, ok := kernelModule(f); ok {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		out = append(out, critical.KernelModule(b.Module))
	}
	return out
}

// kernelModule is the kernel module a file is, if it is one: "zfs" for
// .../zfs.ko.zst.
func kernelModule(file string) (string, bool) {
	base := path.Base(file)
	i := strings.Index(base, ".ko")
	if i <= 0 {
		return "", false
	}
	return critical.KernelModule(base[:i]), true
}

// sortBuilds orders kept builds by module, version (as dkms does), kernel.
func sortBuilds(bs []state.KeptBuild) {
	slices.SortStableFunc(bs, func(a, b state.KeptBuild) int {
		switch {
		case a.Module != b.Module:
			return strings.Compare(a.Module, b.Module)
		case a.Version != b.Version:
			if dkms.VersionLess(a.Version, b.Version) {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Kernel, b.Kernel)
	})
}

func (k *Keeper) log() io.Writer {
	if k.Log == nil {
		return io.Discard
	}
	return k.Log
}

// logRef is " (log: NAME)" for messages, "" when dkms's output is not kept.
func (k *Keeper) logRef() string {
	if k.LogName == "" || k.Log == nil {
		return ""
	}
	return " (log: " + report.Text(k.LogName) + ")"
}

func (k *Keeper) now() time.Time {
	if k.Now == nil {
		return time.Now().UTC()
	}
	return k.Now().UTC()
}
