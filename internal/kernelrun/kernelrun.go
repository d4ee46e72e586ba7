// Package kernelrun implements the kernel-side entry points: the
// autoinstall that dkms's kernel hooks call (through the diverted
// dkms_autoinstaller), the postinst.d and prerm.d hooks, and the manual
// rebuild.
//
// Policy: a kernel hook never fails the kernel package because of a module
// (Debian Kernel Handbook, section 8: a failing hook fails the package's
// postinst). Failures are recorded, reported as W: lines and summarised.
package kernelrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/guard"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Autoinstall is `dkms_autoinstaller start KERNEL`, module by module. An
// empty kernel means the running one, as in dkms_autoinstaller.
func Autoinstall(ctx context.Context, e *guard.Env, kernel string) error {
	if kernel == "" {
		kernel = e.Proc.Release()
		if kernel == "" {
			return errors.New("cannot tell the running kernel's release; name the kernel")
		}
	}
	// The same two early exits as dkms_autoinstaller, with its wording.
	if _, err := os.Stat(e.Paths.NoAutoinstall()); err == nil {
		e.Report.Notef("autoinstall for dkms modules has been disabled (%s exists)", e.Paths.Rel(e.Paths.NoAutoinstall()))
		return nil
	}
	eng := e.Engine("", "autoinstall")
	if !eng.HasHeaders(kernel) {
		e.Report.Notef("autoinstall for kernel %s was skipped since the kernel headers for this kernel do not seem to be installed", report.Name(kernel))
		return nil
	}
	tree, err := dkms.ReadTree(e.Paths.DKMSTree())
	if err != nil {
		return err
	}
	if len(tree) == 0 {
		return nil
	}
	st, unlock := openForBuild(ctx, e)
	defer unlock()
	run, live := e.LiveRun(st)
	if live {
		eng.RunID = run.ID
	}
	e.Report.Notef("building DKMS modules for kernel %s", report.Name(kernel))
	results := eng.Autoinstall(ctx, tree, kernel)
	all := record(ctx, e, st, results)
	if !live {
		// No apt run will summarise (dpkg -i, or an apt that died): say it here.
		summarise(e, "DKMS modules for kernel "+report.Name(kernel), results, all)
	}
	return nil
}

// openForBuild opens the state directory and takes the build lock. Without
// usable state (read-only or full disk, an unsafe directory) building still
// goes on: state is bookkeeping, the modules are what the user needs.
func openForBuild(ctx context.Context, e *guard.Env) (*state.Store, func()) {
	st, err := e.OpenStore(true)
	if err != nil {
		e.Report.Warnf("building without a record: %v", err)
		return nil, func() {}
	}
	unlock, err := st.BuildLock(ctx, func() {
		e.Report.Notef("waiting for another dkms-guard build to finish (%s)", filepath.Join(st.Dir(), "build.lock"))
	})
	if err != nil {
		e.Report.Warnf("building without the build lock: %v", err)
		return st, func() { st.Close() }
	}
	return st, func() { unlock(); st.Close() }
}

func record(ctx context.Context, e *guard.Env, st *state.Store, results []state.Result) *state.Results {
	all, err := e.Record(ctx, st, results)
	if err != nil {
		e.Report.Warnf("%v", err)
	}
	return all
}

func summarise(e *guard.Env, title string, rows []state.Result, all *state.Results) {
	ks, err := e.KernelStates(all)
	if err != nil {
		e.Report.Warnf("%v", err)
	}
	report.Summary(e.Report, title, rows, ks, e.Paths.Rel(e.Paths.Notice()))
}

// Postinst is /etc/kernel/postinst.d/dkms-guard: it runs after dkms's hook
// and before initramfs-tools, so it reports the module set the new
// initramfs is built with.
func Postinst(ctx context.Context, e *guard.Env, kernel string) error {
	tree, err := dkms.ReadTree(e.Paths.DKMSTree())
	if err != nil || len(tree) == 0 {
		return err
	}
	var st *state.Store
	if s, err := e.OpenStore(false); err == nil {
		st = s
		defer st.Close()
	}
	all := e.LoadResults(st)
	var have, lack []string
	for _, name := range tree.Names() {
		if m, ok := tree.InstalledFor(name, kernel); ok {
			have = append(have, report.MV(m.Name, m.Version))
			continue
		}
		if r, ok := all.Get(kernel, name); ok && r.Missing() {
			lack = append(lack, report.MV(r.Module, r.Version)+" ("+string(r.Outcome)+")")
		}
	}
	if len(have) == 0 && len(lack) == 0 {
		return nil
	}
	msg := fmt.Sprintf("kernel %s gets its initramfs with DKMS modules: %s", report.Name(kernel), listOrNone(have))
	if len(lack) > 0 {
		msg += "; without: " + listOrNone(lack)
	}
	e.Report.Notef("%s", msg)
	if st != nil {
		if err := e.WriteNotice(all); err != nil {
			e.Report.Warnf("%v", err)
		}
	}
	return nil
}

// Prerm is /etc/kernel/prerm.d/dkms-guard: a kernel being removed takes its
// results and build logs with it.
func Prerm(ctx context.Context, e *guard.Env, kernel string) error {
	return e.Locked(ctx, false, func(st *state.Store) error {
		all, err := st.LoadResults()
		if err != nil {
			return err
		}
		if n := all.ForgetKernel(kernel); n > 0 {
			if err := st.Save(state.ResultsFile, all); err != nil {
				return err
			}
			e.Report.Notef("forgot %d DKMS build results of kernel %s, which is being removed", n, report.Name(kernel))
		}
		if err := os.RemoveAll(filepath.Join(e.Paths.LogDir(), paths.SafeName(kernel))); err != nil {
			e.Report.Warnf("removing build logs of %s: %v", report.Name(kernel), err)
		}
		return e.WriteNotice(all)
	})
}

// Rebuild retries modules for kernels: by default every kernel with
// headers and, for each, what autoinstall would build; --module names
// modules to (re)try whether or not they set AUTOINSTALL. It returns how
// many builds did not succeed.
func Rebuild(ctx context.Context, e *guard.Env, kernels, modules []string) (int, error) {
	tree, err := dkms.ReadTree(e.Paths.DKMSTree())
	if err != nil {
		return 0, err
	}
	for _, m := range modules {
		if len(tree.Versions(m)) == 0 {
			return 0, fmt.Errorf("%w: no DKMS module named %s (see dkms status)", ErrUsage, report.Name(m))
		}
	}
	eng := e.Engine("", "rebuild")
	eng.Severity = func(string) state.Severity { return state.SevError }
	failed := 0
	if len(kernels) == 0 {
		all, err := e.Kernels()
		if err != nil {
			return 0, err
		}
		for _, k := range all {
			if eng.HasHeaders(k) {
				kernels = append(kernels, k)
			}
		}
		if len(kernels) == 0 {
			return 0, errors.New("no kernel with headers installed: nothing to build for")
		}
	} else {
		var ok []string
		for _, k := range kernels {
			if !eng.HasHeaders(k) {
				e.Report.Errorf("no headers for kernel %s: install linux-headers-%s first", report.Name(k), k)
				failed++
				continue
			}
			ok = append(ok, k)
		}
		kernels = ok
	}
	st, unlock := openForBuild(ctx, e)
	defer unlock()
	var results []state.Result
	for _, k := range kernels {
		if len(modules) == 0 {
			results = append(results, eng.Autoinstall(ctx, tree, k)...)
			continue
		}
		var jobs []dkms.Module
		for _, name := range modules {
			if m, ok := tree.InstalledFor(name, k); ok {
				e.Report.Notef("%s: already installed for %s", report.MV(m.Name, m.Version), report.Name(k))
				continue
			}
			m, _ := tree.Newest(name)
			jobs = append(jobs, m)
		}
		results = append(results, eng.Build(ctx, tree, k, jobs)...)
	}
	for _, r := range results {
		if r.Outcome == state.Failed || r.Outcome == state.Skipped {
			failed++
		}
	}
	all := record(ctx, e, st, results)
	if len(results) == 0 {
		e.Report.Notef("nothing to rebuild: every module is installed or unsupported for %s", listOrNone(kernels))
	}
	summarise(e, "dkms-guard rebuild", results, all)
	return failed, nil
}

// ErrUsage marks an error in what the user asked for.
var ErrUsage = errors.New("usage")

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(slices.Values(s)), ", ")
}
