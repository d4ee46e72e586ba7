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
//   - it has binaries only and its version is no longer added with its
//     source: drop it (dkms cannot load it);
//   - no version is installed: put it back.
//
// NOTE(dkms-guard): stock dkms leaves a kernel without the module when
// the new version fails; putting the old build back is dkms-guard's own,
// done only with dkms's commands (ldtarball, install --force, remove).
//
// A version put back from an archive with its source owns /usr/src/M-V
// when that did not exist before (OwnsSource, shared by every kept build
// of M/V); dropping the last of them removes M/V from dkms's tree and
// that directory, so nothing of it remains, unless a package ships that
// directory again (a downgrade) or a kernel still has M/V installed and
// no other version: then M/V stays, no longer kept. An existing
// /usr/src/M-V is never replaced by an archive's.

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
	"github.com/dkms-guard/dkms-guard/internal/paths"
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
	dropRestored                  // a kernel's build, put back: its work is done (said by sayPutBack)
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
	kept, err := st.LoadKept()
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
	k.restoreAside(kept)

	var next, candidates []state.KeptBuild
	var drops []dropping
	for _, b := range kept.Builds {
		switch v, d := k.judge(b, tree, opt); v {
		case leave:
			next = append(next, b)
		case drop:
			drops = append(drops, d)
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
					if b.Why == state.KeptForKernel {
						// The build from before the kernel's reinstall is
						// that version's, checked to fit the kernel: it is
						// as good as a rebuild, and nothing newer is
						// waited for. Kept, it would stand in forever
						// (rebuild leaves an installed version be).
						drops = append(drops, dropping{b: b, why: dropRestored})
					} else {
						next = append(next, b)
					}
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

// verdict is what a settle does with one kept build.
type verdict int

const (
	leave   verdict = iota // it stands in, or is not this settle's
	drop                   // see dropping.why
	restore                // its kernel has no version of the module: put it back
)

// judge decides what to do with b, from dkms's tree and the kernel's
// modules directory alone (see the top of this file).
func (k *Keeper) judge(b state.KeptBuild, tree dkms.Tree, opt Options) (verdict, dropping) {
	if opt.Kernels != nil && !slices.Contains(opt.Kernels, b.Kernel) {
		return leave, dropping{}
	}
	inst, installed := tree.InstalledFor(b.Module, b.Kernel)
	switch {
	case !isDir(filepath.Join(k.Paths.ModulesDir(), b.Kernel)):
		return drop, dropping{b: b, why: dropKernelGone}
	case b.Package != "" && opt.Pending[b.Package]:
		return leave, dropping{}
	case b.Package != "" && opt.Removed[b.Package]:
		return drop, dropping{b: b, why: dropRemoved, by: b.Package}
	case installed && inst.Version != b.Version:
		return drop, dropping{b: b, why: dropReplaced, by: inst.Version}
	case installed && b.PutBack.IsZero():
		return drop, dropping{b: b, why: dropStale}
	case installed:
		return leave, dropping{} // it stands in
	case !b.PutBack.IsZero() && !k.added(b.Module, b.Version):
		return drop, dropping{b: b, why: dropUntracked}
	case !b.Source && !k.hasSource(b.Module, b.Version):
		// A binaries-only archive loads only into a version still
		// added with its source: without it dkms 3.2 makes a stub it
		// can neither list nor remove. The version was removed since
		// it was kept (its package removed or upgraded): so be it.
		return drop, dropping{b: b, why: dropUntracked}
	}
	return restore, dropping{}
}

// Idle tells whether a settle of every kernel, with the packages removed
// that removed names, would leave each kept build as it is (each stands
// in for its kernel): what post-invoke asks before it takes the build
// lock, so that while a kept build stands in, apt runs that touch no
// module stay as quick as without it (no lock, no dkms). A kept.json
// that cannot be read is not idle.
func Idle(p paths.Paths, st *state.Store, tree dkms.Tree, removed map[string]bool) bool {
	kept, err := st.LoadKept()
	if err != nil {
		return false
	}
	k := &Keeper{Paths: p}
	for _, b := range kept.Builds {
		if v, _ := k.judge(b, tree, Options{Removed: removed}); v != leave {
			return false
		}
	}
	return true
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
	kept, err := st.LoadKept()
	if err != nil {
		return err
	}
	if len(kept.Builds) > 0 {
		return fmt.Errorf("%d kept builds could not be dropped", len(kept.Builds))
	}
	// dkms-guard goes: what a kept.json set aside listed goes with it.
	if root, err := openDir(k.Paths, false); err == nil {
		err = sweep(root, kept, true)
		root.Close()
		if err != nil {
			return err
		}
	}
	if err := os.Remove(k.Paths.KeptDir()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return st.Remove(state.KeptFile)
}

// dropWhere drops the kept builds match selects, as why.
func (k *Keeper) dropWhere(ctx context.Context, st *state.Store, why dropWhy, match func(state.KeptBuild) bool) error {
	kept, err := st.LoadKept()
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
	k.restoreAside(kept)
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
	// NOTE(dkms-guard): ldtarball of an archive with its source deletes
	// /usr/src/M-V (--force) and copies the archive's. Where that
	// directory is there, it stays as it is: a new package revision of
	// the same module version (a Debian stable update) keeps its own,
	// patched source for the kernels to come, whatever the kept build
	// was made from. It is moved aside for the load and back after it.
	var restore func() error
	if b.Source && hadSource {
		r, err := k.sourceAside(b.Module, b.Version)
		if err != nil {
			k.Report.Errorf("cannot put back the kept build %s for %s: moving %s aside for the load: %v; keeping it to retry", mv, kernel, report.Text(k.Paths.Rel(src)), err)
			return putFailed
		}
		restore = r
	}
	err := k.DKMS.LdTarball(ctx, filepath.Join(k.Paths.KeptDir(), b.Archive), force, log)
	if restore != nil {
		if rerr := restore(); rerr != nil {
			k.Report.Errorf("cannot move %s back after putting back %s for %s: %v; it is %s", report.Text(k.Paths.Rel(src)), mv, kernel, rerr, report.Text(k.Paths.Rel(k.asideDir(b.Module, b.Version))))
			return putFailed
		}
	}
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
	// A version is left while a kept build of it stays, or while a build
	// put back stays installed as dkms-guard goes (dropReleased).
	left := map[state.MV]bool{}
	for i := range next {
		next[i].OwnsSource = owned[next[i].MV()]
		left[next[i].MV()] = true
	}
	for _, d := range drops {
		if d.why == dropReleased && !d.b.PutBack.IsZero() {
			left[d.b.MV()] = true
		}
	}
	// The kernels whose kept build goes because its package was removed
	// or the kernel is: the version is not needed there any more.
	removedFor := map[state.MV]map[string]bool{}
	for _, d := range drops {
		if d.why == dropRemoved || d.why == dropKernelGone {
			if removedFor[d.b.MV()] == nil {
				removedFor[d.b.MV()] = map[string]bool{}
			}
			removedFor[d.b.MV()][d.b.Kernel] = true
		}
	}
	type cleaning struct{ ok, removed bool }
	cleaned := map[state.MV]cleaning{}
	var dropped []dropping
	for _, d := range drops {
		mv := d.b.MV()
		switch {
		case d.why == dropReleased && !d.b.PutBack.IsZero():
			// NOTE(dkms-guard): removing dkms-guard must not take away
			// a module that works: a build put back stays installed, an
			// ordinary dkms module from now on (said by sayDropped).
		case owned[mv] && !left[mv]:
			c, done := cleaned[mv]
			if !done {
				c.ok, c.removed = k.removeVersion(ctx, mv, removedFor[mv])
				cleaned[mv] = c
			}
			if !c.ok {
				next = append(next, d.b) // retried next time
				continue
			}
			if !c.removed && d.why == dropReplaced && !d.b.PutBack.IsZero() && !k.unbuild(ctx, d.b) {
				next = append(next, d.b)
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
	// An archive kept.json does not list is a leftover of a crash between
	// mktarball and saving kept.json, unless kept.json was set aside.
	if err := sweep(root, kept, !keptAside(st)); err != nil {
		errs = append(errs, fmt.Errorf("cleaning %s: %w", k.Paths.KeptDir(), err))
	}
	return errors.Join(errs...)
}

// removeVersion removes the version mv that dkms-guard put back with its
// source: from dkms's tree (`dkms remove --all`, if it is still there)
// and /usr/src/M-V, unless a package ships it again or a kernel (other
// than removedFor) still has it installed: then it is left, no longer
// dkms-guard's. ok: nothing of it is dkms-guard's any more; removed:
// it is gone.
func (k *Keeper) removeVersion(ctx context.Context, mv state.MV, removedFor map[string]bool) (ok, removed bool) {
	name := report.MV(mv.Module, mv.Version)
	if pkg, err := k.shippedBy(ctx, mv); err != nil {
		k.Report.Warnf("not removing %s, put back from a kept build: cannot tell whether a package ships it: %v; trying again next time", name, err)
		return false, false
	} else if pkg != "" {
		// A package brought this version back (a downgrade to it): dkms's
		// tree and /usr/src/M-V are its own now, and stay.
		k.Report.Notef("left %s in place: its package %s ships it again", name, report.Name(pkg))
		return true, false
	}
	// A kernel that still has this version installed, and no other (by
	// hand, or put back by a run that crashed before saving kept.json),
	// needs it: it stays, no longer kept.
	tree, err := dkms.ReadTree(k.Paths.DKMSTree())
	if err != nil {
		k.Report.Warnf("not removing %s, put back from a kept build: %v; trying again next time", name, err)
		return false, false
	}
	var needed []string
	for _, m := range tree.Versions(mv.Module) {
		if m.Version != mv.Version {
			continue
		}
		for kernel := range m.Installed {
			if !removedFor[kernel] && isDir(filepath.Join(k.Paths.ModulesDir(), kernel)) {
				needed = append(needed, report.Name(kernel))
			}
		}
	}
	if len(needed) > 0 {
		slices.Sort(needed)
		k.Report.Notef("left %s installed for %s, where no other version is: it was put back from a kept build and is no longer kept; to remove it: dkms remove -m %s -v %s --all; rm -rf %s",
			name, strings.Join(needed, ", "), report.Name(mv.Module), report.Name(mv.Version), report.Text(k.Paths.Rel(k.sourceDir(mv.Module, mv.Version))))
		return true, false
	}
	if k.added(mv.Module, mv.Version) {
		fmt.Fprintf(k.log(), "\n# dkms-guard: removing %s, put back from a kept build\n", name)
		if err := k.DKMS.Remove(ctx, mv.Module, mv.Version, "", k.log()); err != nil {
			k.Report.Errorf("cannot remove %s, put back from a kept build: dkms remove: %v%s; trying again next time", name, err, k.logRef())
			return false, false
		}
	}
	dirName := mv.Module + "-" + mv.Version
	if strings.ContainsRune(dirName, '/') {
		k.Report.Errorf("BUG: not removing the source of %s: odd name", name)
		return false, false
	}
	src, err := os.OpenRoot(k.Paths.SourceTree())
	if errors.Is(err, fs.ErrNotExist) {
		return true, true
	}
	if err == nil {
		err = src.RemoveAll(dirName)
		src.Close()
	}
	if err != nil {
		k.Report.Errorf("cannot remove %s, put back from a kept build: %v; trying again next time", report.Text(k.Paths.Rel(k.sourceDir(mv.Module, mv.Version))), err)
		return false, false
	}
	return true, true
}

// shippedBy is the package that ships /usr/src/M-V of mv, "" if none
// does or nobody can be asked (Owners unset).
func (k *Keeper) shippedBy(ctx context.Context, mv state.MV) (string, error) {
	if k.Owners == nil {
		return "", nil
	}
	src := k.Paths.Rel(k.sourceDir(mv.Module, mv.Version))
	found, err := k.Owners.Owners(ctx, []string{src})
	if err != nil {
		return "", err
	}
	return found[src], nil
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

// hasSource tells whether module/version is added as dkms 3.2 counts it
// (its source a link) and that source is there: what a binaries-only
// archive needs to load.
func (k *Keeper) hasSource(module, version string) bool {
	link := filepath.Join(k.Paths.DKMSTree(), module, version, "source")
	fi, err := os.Lstat(link)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0 && isDir(link)
}

// asideDir is where putBack keeps /usr/src/M-V during a load:
// /usr/src/.M-V.dkms-guard-aside.
func (k *Keeper) asideDir(module, version string) string {
	return filepath.Join(k.Paths.SourceTree(), asideName(module, version))
}

func asideName(module, version string) string {
	return "." + module + "-" + version + ".dkms-guard-aside"
}

// sourceAside moves /usr/src/M-V aside; the function it returns removes
// what the load put there instead and moves it back.
func (k *Keeper) sourceAside(module, version string) (func() error, error) {
	dir := module + "-" + version
	if strings.ContainsRune(dir, '/') {
		return nil, fmt.Errorf("BUG: odd name %q", dir)
	}
	root, err := os.OpenRoot(k.Paths.SourceTree())
	if err != nil {
		return nil, err
	}
	aside := asideName(module, version)
	if err := root.Rename(dir, aside); err != nil {
		root.Close()
		return nil, err
	}
	return func() error {
		defer root.Close()
		if err := root.RemoveAll(dir); err != nil {
			return err
		}
		return root.Rename(aside, dir)
	}, nil
}

// restoreAside moves back every /usr/src/M-V of kept that a put-back
// moved aside and did not move back (it was killed during the load).
func (k *Keeper) restoreAside(kept state.Kept) {
	seen := map[state.MV]bool{}
	for _, b := range kept.Builds {
		mv := b.MV()
		if seen[mv] || !b.Source || strings.ContainsRune(mv.Module+mv.Version, '/') {
			continue
		}
		seen[mv] = true
		if _, err := os.Lstat(k.asideDir(mv.Module, mv.Version)); err != nil {
			continue
		}
		root, err := os.OpenRoot(k.Paths.SourceTree())
		if err == nil {
			dir := mv.Module + "-" + mv.Version
			if err = root.RemoveAll(dir); err == nil {
				err = root.Rename(asideName(mv.Module, mv.Version), dir)
			}
			root.Close()
		}
		if err != nil {
			k.Report.Errorf("cannot move %s back to %s after an interrupted put-back: %v", report.Text(k.Paths.Rel(k.asideDir(mv.Module, mv.Version))), report.Text(k.Paths.Rel(k.sourceDir(mv.Module, mv.Version))), err)
			continue
		}
		k.Report.Warnf("moved %s back, after a put-back of %s that was interrupted", report.Text(k.Paths.Rel(k.sourceDir(mv.Module, mv.Version))), report.MV(mv.Module, mv.Version))
	}
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
