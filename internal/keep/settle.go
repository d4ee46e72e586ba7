package keep

// Settling decides, per kept build, from what dkms's tree shows now:
//
//   - its kernel is gone (no /lib/modules/K: a reinstalled kernel keeps
//     it throughout), or its package was removed in this run: drop it;
//   - another version of the module is installed for its kernel (the
//     replacement): drop it;
//   - its own version is installed: it stands in once put back; a build
//     never put back has nothing to stand in for (the upgrade built the
//     same version again): drop it;
//   - it was put back and someone removed that version from dkms's tree
//     since (dkms remove): drop it, rather than fight the administrator;
//   - no version is installed: put it back.
//
// NOTE(dkms-guard): stock dkms leaves a kernel without the module when
// the new version fails; putting the old build back is dkms-guard's own,
// done only with dkms's commands (ldtarball, install --force, remove).
//
// A version put back from an archive with its source owns /usr/src/M-V
// when that did not exist before (OwnsSource, shared by every kept build
// of M/V); dropping the last of them removes M/V from dkms's tree and
// that directory, so nothing of it remains.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/kmod"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// dropWhy is why a kept build is dropped.
type dropWhy int

const (
	dropStale      dropWhy = iota // its own version is installed, it was never put back
	dropReplaced                  // another version is installed for its kernel
	dropKernelGone                // its kernel is removed
	dropRemoved                   // its package was removed
	dropUntracked                 // put back, then removed from dkms's tree
	dropBroken                    // cannot be put back (said with an E: line)
	dropReleased                  // dkms-guard is removed: a build put back stays installed
)

// dropping is one kept build to drop; by is the replacement's version or
// the removed package.
type dropping struct {
	b   state.KeptBuild
	why dropWhy
	by  string
}

// putResult is how one put-back went.
type putResult int

const (
	putDone   putResult = iota
	putFailed           // said; kept to retry
	putBroken           // said; dropped
)

// Settle puts back every kept build whose kernel has no version of the
// module installed, and drops those whose replacement is installed, whose
// kernel is gone, or whose package was removed. It returns the builds put
// back this time. Dropping the last kept build of a version that was put
// back from an archive with its source removes that version from dkms's
// tree (dkms remove --all) and its /usr/src directory.
func (k *Keeper) Settle(ctx context.Context, st *state.Store, tree dkms.Tree, opt Options) ([]state.KeptBuild, error) {
	kept, err := Load(st)
	if err != nil {
		return nil, err
	}
	root, err := openDir(k.Paths, len(kept.Builds) > 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing kept, ever
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()

	var next, candidates []state.KeptBuild
	var drops []dropping
	for _, b := range kept.Builds {
		if opt.Kernels != nil && !slices.Contains(opt.Kernels, b.Kernel) {
			next = append(next, b)
			continue
		}
		inst, installed := tree.InstalledFor(b.Module, b.Kernel)
		switch {
		case !isDir(filepath.Join(k.Paths.ModulesDir(), b.Kernel)):
			drops = append(drops, dropping{b: b, why: dropKernelGone})
		case b.Package != "" && opt.Pending[b.Package]:
			next = append(next, b)
		case b.Package != "" && opt.Removed[b.Package]:
			drops = append(drops, dropping{b: b, why: dropRemoved, by: b.Package})
		case installed && inst.Version != b.Version:
			drops = append(drops, dropping{b: b, why: dropReplaced, by: inst.Version})
		case installed && b.PutBack.IsZero():
			drops = append(drops, dropping{b: b, why: dropStale})
		case installed:
			next = append(next, b) // it stands in
		case !b.PutBack.IsZero() && !k.added(b.Module, b.Version):
			drops = append(drops, dropping{b: b, why: dropUntracked})
		default:
			candidates = append(candidates, b)
		}
	}

	candidates, superseded := newestOnly(candidates)
	drops = append(drops, superseded...)
	var put []state.KeptBuild
	if len(candidates) > 0 {
		var results *state.Results
		if rs, err := st.LoadResults(); err == nil {
			results = rs
		}
		for _, kernel := range kernelsOf(candidates) {
			var done []state.KeptBuild
			initramfs := false
			for _, b := range candidates {
				if b.Kernel != kernel {
					continue
				}
				switch k.putBack(ctx, root, &b) {
				case putDone:
					// Put back again (its kernel reinstalled since): what
					// it stood in for before stays unless known anew.
					if failed, log := failedVersion(tree, results, b); failed != "" || b.Failed == "" {
						b.Failed, b.FailedLog = failed, log
					}
					done = append(done, b)
					next = append(next, b)
					initramfs = initramfs || b.InInitramfs || (k.Critical != nil && k.Critical(ctx, kernel, b.Module))
				case putFailed:
					next = append(next, b)
				case putBroken:
					drops = append(drops, dropping{b: b, why: dropBroken})
				}
			}
			if len(done) == 0 {
				continue
			}
			if err := k.DKMS.Depmod(ctx, kernel, k.log()); err != nil {
				k.Report.Errorf("depmod for %s, after putting back kept builds: %v%s", report.Name(kernel), err, k.logRef())
			}
			if initramfs && !opt.NoInitramfs && k.Initramfs != nil {
				if err := k.Initramfs.Update(ctx, kernel, k.log()); err != nil {
					k.Report.Errorf("cannot update the initramfs of %s after putting back kept builds: %v%s", report.Name(kernel), err, k.logRef())
				}
			}
			put = append(put, done...)
		}
		k.sayPutBack(put, results)
	}
	return put, k.finish(ctx, st, root, kept, next, drops)
}

// DropKernel drops every kept build for kernel (it is being removed).
func (k *Keeper) DropKernel(ctx context.Context, st *state.Store, kernel string) error {
	return k.dropWhere(ctx, st, dropKernelGone, func(b state.KeptBuild) bool { return b.Kernel == kernel })
}

// DropAll drops every kept build (dkms-guard is purged), and the kept
// directory and kept.json with them.
func (k *Keeper) DropAll(ctx context.Context, st *state.Store) error {
	if err := k.dropWhere(ctx, st, dropReleased, func(state.KeptBuild) bool { return true }); err != nil {
		return err
	}
	kept, err := Load(st)
	if err != nil {
		return err
	}
	if len(kept.Builds) > 0 {
		return fmt.Errorf("%d kept builds could not be dropped", len(kept.Builds))
	}
	if err := os.Remove(k.Paths.KeptDir()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return st.Remove(state.KeptFile)
}

// dropWhere drops the kept builds match selects, as why.
func (k *Keeper) dropWhere(ctx context.Context, st *state.Store, why dropWhy, match func(state.KeptBuild) bool) error {
	kept, err := Load(st)
	if err != nil {
		return err
	}
	root, err := openDir(k.Paths, len(kept.Builds) > 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	var next []state.KeptBuild
	var drops []dropping
	for _, b := range kept.Builds {
		if match(b) {
			drops = append(drops, dropping{b: b, why: why})
		} else {
			next = append(next, b)
		}
	}
	return k.finish(ctx, st, root, kept, next, drops)
}

// putBack loads b's archive into dkms's tree and installs it for its
// kernel: `dkms ldtarball`, then `dkms install --force --no-depmod`
// (depmod and the initramfs are the caller's, once per kernel). A
// kernel's build is first checked against the reinstalled kernel. It
// records on b whether /usr/src/M-V is now dkms-guard's, even when a
// later step fails, so that dropping b removes it.
func (k *Keeper) putBack(ctx context.Context, root *os.Root, b *state.KeptBuild) putResult {
	mv, kernel := report.MV(b.Module, b.Version), report.Name(b.Kernel)
	if !haveArchive(root, b.Archive) {
		k.Report.Errorf("cannot put back the kept build %s for %s: its archive %s is gone; dropped it", mv, kernel, report.Text(k.Paths.Rel(filepath.Join(k.Paths.KeptDir(), b.Archive))))
		return putBroken
	}
	if b.Why == state.KeptForKernel && k.Checker != nil {
		files, dir, err := extractModules(root, b.Archive, b.Kernel)
		if dir != "" {
			defer root.RemoveAll(dir)
		}
		if err == nil {
			err = k.Checker.Fits(ctx, files, b.Kernel)
		}
		var mismatch *kmod.MismatchError
		switch {
		case errors.As(err, &mismatch):
			k.Report.Errorf("cannot put back the build of %s from before %s was reinstalled: %v; dropped it", mv, kernel, err)
			return putBroken
		case err != nil:
			// A build that does not fit fails to load, and says why;
			// without the module the kernel lacks it for certain.
			k.Report.Warnf("cannot check the build of %s from before %s was reinstalled against it: %v; putting it back unchecked", mv, kernel, err)
		}
	}
	log := k.log()
	fmt.Fprintf(log, "\n# dkms-guard: putting back %s for %s (%s)\n", mv, kernel, b.Why)
	src := k.sourceDir(b.Module, b.Version)
	hadSource := isDir(src)
	added := k.added(b.Module, b.Version)
	// dkms's load_tarball refuses a module already added, and skips a
	// kernel directory already there, unless forced.
	force := added || isDir(filepath.Join(k.Paths.DKMSTree(), b.Module, b.Version, b.Kernel))
	err := k.DKMS.LdTarball(ctx, filepath.Join(k.Paths.KeptDir(), b.Archive), force, log)
	if b.Source && !hadSource && isDir(src) {
		b.OwnsSource = true
	}
	// `dkms ldtarball` is `load_tarball && add_module`: forced over a
	// module already added, the archive is loaded and add_module then
	// fails ("DKMS tree already contains"). The build is what counts.
	if err != nil && !(added && k.added(b.Module, b.Version) && isDir(k.moduleDir(*b))) {
		k.Report.Errorf("cannot put back the kept build %s for %s: dkms ldtarball: %v%s; keeping it to retry", mv, kernel, err, k.logRef())
		return putFailed
	}
	if err := k.DKMS.InstallKept(ctx, b.Module, b.Version, b.Kernel, log); err != nil {
		k.Report.Errorf("cannot put back the kept build %s for %s: dkms install: %v%s; keeping it to retry", mv, kernel, err, k.logRef())
		return putFailed
	}
	b.PutBack = k.now()
	return putDone
}

// failedVersion is the version b stands in for and its log: the newest
// version of the module in dkms's tree when newer than b's, or b's own
// version when results.json says its build failed or was unsupported for
// b's kernel (a reinstall, a kernel's rebuild); "" when none.
func failedVersion(tree dkms.Tree, results *state.Results, b state.KeptBuild) (string, string) {
	failed := ""
	if n, ok := tree.Newest(b.Module); ok && dkms.VersionLess(b.Version, n.Version) {
		failed = n.Version
	}
	var r state.Result
	ok := false
	if results != nil {
		r, ok = results.Get(b.Kernel, b.Module)
	}
	if failed == "" && ok && r.Version == b.Version && (r.Missing() || r.Outcome == state.Unsupported) {
		failed = b.Version
	}
	if failed != "" && ok && r.Version == failed {
		return failed, r.Log
	}
	return failed, ""
}

// finish drops drops, removing what dkms-guard owns of each version no
// kept build is left of, and saves kept.json as next when it changed.
func (k *Keeper) finish(ctx context.Context, st *state.Store, root *os.Root, kept state.Kept, next []state.KeptBuild, drops []dropping) error {
	// OwnsSource is shared by every kept build of M/V: the one that
	// created /usr/src/M-V may go first.
	owned := map[state.MV]bool{}
	for _, b := range next {
		owned[b.MV()] = owned[b.MV()] || b.OwnsSource
	}
	for _, d := range drops {
		owned[d.b.MV()] = owned[d.b.MV()] || d.b.OwnsSource
	}
	left := map[state.MV]bool{}
	for i := range next {
		next[i].OwnsSource = owned[next[i].MV()]
		left[next[i].MV()] = true
	}
	cleaned := map[state.MV]bool{}
	var dropped []dropping
	for _, d := range drops {
		mv := d.b.MV()
		switch {
		case d.why == dropReleased && !d.b.PutBack.IsZero():
			// NOTE(dkms-guard): removing dkms-guard must not take away
			// a module that works: a build put back stays installed, an
			// ordinary dkms module from now on (said by sayDropped).
		case owned[mv] && !left[mv]:
			ok, done := cleaned[mv]
			if !done {
				ok = k.removeVersion(ctx, mv)
				cleaned[mv] = ok
			}
			if !ok {
				next = append(next, d.b) // retried next time
				continue
			}
		case d.why == dropReplaced && !d.b.PutBack.IsZero():
			if !k.unbuild(ctx, d.b) {
				next = append(next, d.b)
				continue
			}
		}
		if err := removeArchive(root, d.b.Archive); err != nil {
			k.Report.Warnf("cannot remove the kept build %s for %s: %v", report.MV(d.b.Module, d.b.Version), report.Name(d.b.Kernel), err)
			next = append(next, d.b)
			continue
		}
		dropped = append(dropped, d)
	}
	k.sayDropped(dropped)
	sortBuilds(next)
	var errs []error
	if !reflect.DeepEqual(next, kept.Builds) && !(len(next) == 0 && len(kept.Builds) == 0) {
		kept.Builds = next
		if err := st.Save(state.KeptFile, kept); err != nil {
			errs = append(errs, err)
		}
	}
	kept.Builds = next
	if err := sweep(root, kept); err != nil {
		errs = append(errs, fmt.Errorf("cleaning %s: %w", k.Paths.KeptDir(), err))
	}
	return errors.Join(errs...)
}

// removeVersion removes the version mv that dkms-guard put back with its
// source: from dkms's tree (`dkms remove --all`, if it is still there)
// and /usr/src/M-V. It tells whether nothing of it is left.
func (k *Keeper) removeVersion(ctx context.Context, mv state.MV) bool {
	name := report.MV(mv.Module, mv.Version)
	if k.added(mv.Module, mv.Version) {
		fmt.Fprintf(k.log(), "\n# dkms-guard: removing %s, put back from a kept build\n", name)
		if err := k.DKMS.Remove(ctx, mv.Module, mv.Version, "", k.log()); err != nil {
			k.Report.Errorf("cannot remove %s, put back from a kept build: dkms remove: %v%s; trying again next time", name, err, k.logRef())
			return false
		}
	}
	dirName := mv.Module + "-" + mv.Version
	if strings.ContainsRune(dirName, '/') {
		k.Report.Errorf("BUG: not removing the source of %s: odd name", name)
		return false
	}
	src, err := os.OpenRoot(k.Paths.SourceTree())
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err == nil {
		err = src.RemoveAll(dirName)
		src.Close()
	}
	if err != nil {
		k.Report.Errorf("cannot remove %s, put back from a kept build: %v; trying again next time", report.Text(k.Paths.Rel(k.sourceDir(mv.Module, mv.Version))), err)
		return false
	}
	return true
}

// unbuild removes the build of b's version for b's kernel, which dkms
// left "built" when the replacement was installed over it (dkms install
// does not uninstall another version): `dkms remove -m M -v V -k K`. It
// tells whether nothing of it is left.
func (k *Keeper) unbuild(ctx context.Context, b state.KeptBuild) bool {
	if !isDir(filepath.Join(k.Paths.DKMSTree(), b.Module, b.Version, b.Kernel)) || !k.added(b.Module, b.Version) {
		return true
	}
	name, kernel := report.MV(b.Module, b.Version), report.Name(b.Kernel)
	fmt.Fprintf(k.log(), "\n# dkms-guard: removing %s for %s, put back from a kept build and replaced since\n", name, kernel)
	if err := k.DKMS.Remove(ctx, b.Module, b.Version, b.Kernel, k.log()); err != nil {
		k.Report.Errorf("cannot remove %s for %s, put back from a kept build and replaced since: dkms remove: %v%s; trying again next time", name, kernel, err, k.logRef())
		return false
	}
	return true
}

// added tells whether module/version is in dkms's tree (is_module_added:
// its source link or directory exists).
func (k *Keeper) added(module, version string) bool {
	_, err := os.Lstat(filepath.Join(k.Paths.DKMSTree(), module, version, "source"))
	return err == nil
}

// sourceDir is /usr/src/M-V.
func (k *Keeper) sourceDir(module, version string) string {
	return filepath.Join(k.Paths.SourceTree(), module+"-"+version)
}

// moduleDir is where dkms keeps b's built modules: M/V/K/ARCH/module.
func (k *Keeper) moduleDir(b state.KeptBuild) string {
	return filepath.Join(k.Paths.DKMSTree(), b.Module, b.Version, b.Kernel, b.Arch, "module")
}

func isDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// newestOnly keeps, of the kept builds of one module for one kernel, the
// newest version (an earlier run that kept an older one never settled);
// the others are superseded by it.
func newestOnly(bs []state.KeptBuild) (keep []state.KeptBuild, superseded []dropping) {
	for _, b := range bs {
		newest := b
		for _, o := range bs {
			if o.Module == b.Module && o.Kernel == b.Kernel && dkms.VersionLess(newest.Version, o.Version) {
				newest = o
			}
		}
		if newest.Version == b.Version {
			keep = append(keep, b)
		} else {
			superseded = append(superseded, dropping{b: b, why: dropReplaced, by: newest.Version})
		}
	}
	return keep, superseded
}

// kernelsOf lists the kernels of bs, sorted, once each.
func kernelsOf(bs []state.KeptBuild) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Kernel)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
