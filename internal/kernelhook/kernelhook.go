// Package kernelhook runs dkms-guard's kernel-side work: the autoinstall
// that dkms's kernel hooks call through the diverted dkms_autoinstaller,
// the postinst.d and prerm.d hooks, and the same autoinstall on demand for
// people (rebuild).
//
// Policy: a kernel hook never fails the kernel package because of a module
// (Debian Kernel Handbook, section 8: a failing hook fails the package's
// postinst). Failures are recorded, reported as W: lines and summarised.
package kernelhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Machine is what the kernel hooks need to know of the machine.
type Machine interface {
	Kernels() ([]string, error)
	HasHeaders(kernel string) bool
	Release() string
	BootID() string
	Alive(p host.Proc) bool
}

// Boot keeps the default boot entry right and writes the notice.
type Boot interface {
	Publish(ctx context.Context, rec *results.Recorder, view []results.Kernel, exclude string) []string
}

// Hooks runs the kernel-side commands.
type Hooks struct {
	Paths   paths.Paths
	Machine Machine
	Builder *build.Builder
	Results *results.Recorder
	Boot    Boot
	Report  *report.Reporter
	// Notes are more lines for the summary (Secure Boot's), none when nil.
	Notes func(ctx context.Context, view []results.Kernel) []string
	// Keeper, when set, gives what keeps the last working builds (keep.go),
	// called only when something may be kept, put back or dropped.
	Keeper func() Keeper
	// HookDir is the kernel hook directory run-parts runs this from
	// ("postinst", "header_postinst"), "" otherwise (host.HookDir).
	HookDir string
}

// summaryLines are the boot lines and the notes, for a summary.
func (h *Hooks) summaryLines(ctx context.Context, boot []string, view []results.Kernel) []string {
	if h.Notes == nil {
		return boot
	}
	return append(slices.Clip(boot), h.Notes(ctx, view)...)
}

// ErrUsage marks an error in what the user asked for.
var ErrUsage = errors.New("usage")

// Autoinstall is `dkms_autoinstaller start KERNEL`, module by module. An
// empty kernel means the running one, as in dkms_autoinstaller.
func (h *Hooks) Autoinstall(ctx context.Context, kernel string) error {
	if kernel == "" {
		kernel = h.Machine.Release()
		if kernel == "" {
			return errors.New("cannot tell the running kernel's release; name the kernel")
		}
	}
	// The same two early exits as dkms_autoinstaller, with its wording.
	// Nothing is rebuilt then, but dkms's kernel_preinst unbuilt the
	// kernel's modules all the same: their kept builds go back.
	if paths.Exists(h.Paths.NoAutoinstall()) {
		h.Report.Notef("autoinstall for dkms modules has been disabled (%s exists)", h.Paths.Rel(h.Paths.NoAutoinstall()))
		h.settleUnbuilt(ctx, kernel)
		return nil
	}
	if !h.Machine.HasHeaders(kernel) {
		h.Report.Notef("autoinstall for kernel %s was skipped since the kernel headers for this kernel do not seem to be installed", report.Name(kernel))
		h.settleUnbuilt(ctx, kernel)
		return nil
	}
	if tree, err := dkms.ReadTree(h.Paths.DKMSTree()); err != nil || len(tree) == 0 {
		return err
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		return err
	}
	defer sess.End()
	run, live := h.liveRun(sess.Store())
	sess.Labels = build.Labels{By: "autoinstall"}
	if live {
		sess.Labels.Run = run.ID
	}
	h.Report.Notef("building DKMS modules for kernel %s", report.Name(kernel))
	jobs := sess.Pick(kernel)
	if live {
		jobs = h.notAgain(sess.Store(), run.ID, kernel, jobs)
	}
	rs := sess.Build(ctx, kernel, jobs)
	all, view := h.record(ctx, sess.Store(), rs)
	// A kept build of a module that now has no version for kernel (the
	// rebuild after a reinstall failed) goes back before the initramfs
	// is built and the boot decision is made.
	opt := keep.Options{Kernels: []string{kernel}, NoInitramfs: h.noInitramfs()}
	if live {
		opt.Pending, opt.Removed = inPlan(run)
	}
	view = h.settle(ctx, sess, opt, all, view)
	lines := h.Boot.Publish(ctx, h.Results, view, "")
	if !live {
		// No apt run will summarise (dpkg -i, or an apt that died): say it here.
		results.Summary(h.Report, "DKMS modules for kernel "+report.Name(kernel), rs, view, h.summaryLines(ctx, lines, view), h.Paths.Rel(h.Paths.Notice()))
	}
	return nil
}

// notAgain leaves out the modules whose build for kernel already failed
// in this apt run: the kernel hook runs once for the headers and once for
// the image, and the same source against the same headers fails the same
// way, however long it takes (a hung build takes the whole timeout).
// The earlier failure stays on record; post-invoke reports it.
func (h *Hooks) notAgain(st *state.Store, runID, kernel string, jobs []dkms.Module) []dkms.Module {
	all, err := st.LoadResults()
	if err != nil {
		return jobs // said by Load; build them all, as stock dkms would
	}
	var out []dkms.Module
	for _, j := range jobs {
		r, ok := all.Get(kernel, j.Name)
		// A module skipped for a failed BUILD_DEPENDS is left out too:
		// its dependency is, so the earlier, truer reason stands.
		failed := r.Outcome == state.Failed || build.SkippedForDepends(r)
		if ok && r.Run == runID && r.Version == j.Version && failed {
			if r.Outcome == state.Failed {
				h.Report.Notef("%s: not built again for %s: it failed earlier in this apt run (%s)%s",
					report.MV(j.Name, j.Version), report.Name(kernel), r.Reason, build.LogNote(r))
			} else {
				h.Report.Notef("%s: not built for %s in this apt run: %s",
					report.MV(j.Name, j.Version), report.Name(kernel), r.Reason)
			}
			continue
		}
		out = append(out, j)
	}
	return out
}

// liveRun returns the apt run in progress: run.json whose apt process
// still runs in this boot. A run.json from a dead apt or an earlier boot is
// stale and never trusted.
func (h *Hooks) liveRun(st *state.Store) (*state.Run, bool) {
	if st == nil {
		return nil, false
	}
	var run state.Run
	ok, err := st.Load(state.RunFile, &run)
	if err != nil {
		h.Report.Warnf("%v", err)
		return nil, false
	}
	alive := h.Machine.Alive
	if !ok || run.Stale(h.Machine.BootID(), alive) != "" {
		return nil, false
	}
	return &run, true
}

func (h *Hooks) record(ctx context.Context, st *state.Store, rs []state.Result) (*state.Results, []results.Kernel) {
	all, view, err := h.Results.Record(ctx, st, rs, nil)
	if err != nil {
		h.Report.Warnf("%v", err)
	}
	return all, view
}

// Postinst is /etc/kernel/postinst.d/dkms-guard: it runs after dkms's hook
// and before initramfs-tools, so it reports the module set the new
// initramfs is built with.
func (h *Hooks) Postinst(ctx context.Context, kernel string) error {
	tree, err := dkms.ReadTree(h.Paths.DKMSTree())
	if err != nil || len(tree) == 0 {
		return err
	}
	var st *state.Store
	if s, err := state.Open(h.Paths, false, h.Report); err == nil {
		st = s
		defer st.Close()
	} else if !errors.Is(err, state.ErrNoState) && !errors.Is(err, state.ErrUnusable) {
		h.Report.Warnf("%v", err)
	}
	all := h.Results.Load(st)
	var have, lack []string
	for _, name := range tree.Names() {
		if m, ok := tree.InstalledFor(name, kernel); ok {
			have = append(have, report.MV(m.Name, m.Version))
			continue
		}
		newest, _ := tree.Newest(name)
		if r, ok := all.Get(kernel, name); ok && r.Missing() && r.Version == newest.Version {
			lack = append(lack, report.MV(r.Module, r.Version)+" ("+string(r.Outcome)+")")
		}
	}
	if len(have) > 0 || len(lack) > 0 {
		msg := fmt.Sprintf("kernel %s gets its initramfs with DKMS modules: %s", report.Name(kernel), listOrNone(have))
		if len(lack) > 0 {
			msg += "; without: " + listOrNone(lack)
		}
		h.Report.Notef("%s", msg)
	}
	view, err := h.Results.View(all)
	if err != nil {
		return err
	}
	// Before zz-update-grub, which runs after this hook in the same run-parts.
	h.Boot.Publish(ctx, h.Results, view, "")
	return nil
}

// Prerm is /etc/kernel/prerm.d/dkms-guard: a kernel being removed takes its
// results, build logs and kept builds with it. The boot entry is settled after the
// state lock is released: settling takes it again, and runs update-grub.
func (h *Hooks) Prerm(ctx context.Context, kernel string) error {
	// dkms's own prerm.d hook, which runs before this one, removed the
	// kernel's modules: its kept builds can never go back.
	if err := h.dropKept(ctx, kernel); err != nil {
		h.Report.Warnf("dropping the kept builds of %s: %v", report.Name(kernel), err)
	}
	var view []results.Kernel
	recorded := false // no state directory: nothing was ever recorded or pinned
	err := state.Update(ctx, h.Paths, false, h.Report, func(st *state.Store) error {
		recorded = true
		all, err := st.LoadResults()
		if err != nil {
			return err
		}
		if n := all.ForgetKernel(kernel); n > 0 {
			if err := st.Save(state.ResultsFile, all); err != nil {
				return err
			}
			h.Report.Notef("forgot %d DKMS build results of kernel %s, which is being removed", n, report.Name(kernel))
		}
		if err := build.RemoveLogs(h.Paths, kernel); err != nil {
			h.Report.Warnf("removing build logs of %s: %v", report.Name(kernel), err)
		}
		view, err = h.Results.View(all)
		return err
	})
	if err != nil || !recorded {
		return err
	}
	h.Boot.Publish(ctx, h.Results, view, kernel)
	return nil
}

// Rebuild retries modules for kernels: by default every kernel with
// headers and, for each, what autoinstall would build; modules names
// modules to (re)try whether or not they set AUTOINSTALL. It returns how
// many builds did not succeed.
func (h *Hooks) Rebuild(ctx context.Context, kernels, modules []string) (int, error) {
	// A kernel or module named twice is built once.
	kernels, modules = distinct(kernels), distinct(modules)
	failed := 0
	if len(kernels) == 0 {
		all, err := h.Machine.Kernels()
		if err != nil {
			return 0, err
		}
		for _, k := range all {
			if h.Machine.HasHeaders(k) {
				kernels = append(kernels, k)
			}
		}
		if len(kernels) == 0 {
			return 0, errors.New("no kernel with headers installed: nothing to build for")
		}
	} else {
		var ok []string
		for _, k := range kernels {
			if !h.Machine.HasHeaders(k) {
				h.Report.Errorf("no headers for kernel %s: install linux-headers-%s first", report.Name(k), report.Name(k))
				failed++
				continue
			}
			ok = append(ok, k)
		}
		kernels = ok
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer sess.End()
	tree := sess.Tree()
	for _, m := range modules {
		if len(tree.Versions(m)) == 0 {
			return 0, fmt.Errorf("%w: no DKMS module named %s (see dkms status)", ErrUsage, report.Name(m))
		}
	}
	sess.Labels = build.Labels{By: "rebuild", Severity: func(string) state.Severity { return state.SevError }}
	var batches []build.Batch
	for _, k := range kernels {
		if len(modules) == 0 {
			batches = append(batches, build.Batch{Kernel: k, Jobs: sess.Pick(k)})
			continue
		}
		var jobs []dkms.Module
		for _, name := range modules {
			if m, ok := tree.InstalledFor(name, k); ok {
				if sess.StandsIn(m, k) {
					n, _ := tree.Newest(name)
					h.Report.Notef("%s: kept build installed for %s; trying %s again", report.MV(m.Name, m.Version), report.Name(k), report.MV(n.Name, n.Version))
					jobs = append(jobs, n)
					continue
				}
				h.Report.Notef("%s: already installed for %s", report.MV(m.Name, m.Version), report.Name(k))
				continue
			}
			m, _ := tree.Newest(name)
			jobs = append(jobs, m)
		}
		batches = append(batches, build.Batch{Kernel: k, Jobs: jobs})
	}
	// Every kernel's builds in one schedule: they run side by side.
	rs := sess.BuildAll(ctx, batches)
	for _, r := range rs {
		if r.Outcome == state.Failed || r.Outcome == state.Skipped {
			failed++
		}
	}
	all, view := h.record(ctx, sess.Store(), rs)
	// A replacement installed now drops the kept build it replaces; a
	// kernel that lost a module meanwhile gets its kept build back.
	view = h.settle(ctx, sess, keep.Options{Kernels: kernels}, all, view)
	lines := h.Boot.Publish(ctx, h.Results, view, "")
	if len(rs) == 0 {
		h.Report.Notef("nothing to rebuild: every module is installed or unsupported for %s", listOrNone(kernels))
	}
	results.Summary(h.Report, "dkms-guard rebuild", rs, view, h.summaryLines(ctx, lines, view), h.Paths.Rel(h.Paths.Notice()))
	return failed, nil
}

// distinct is s without repeats, in the order each first came.
func distinct(s []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(slices.Clone(s), func(x string) bool {
		dup := seen[x]
		seen[x] = true
		return dup
	})
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(slices.Values(s)), ", ")
}
