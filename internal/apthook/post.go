package apthook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/boot"
	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// PostInvoke ends a run. For every module whose own package was installed
// or upgraded in it (or whose version appeared in it), it makes sure the
// newest version is installed for every kernel that has headers: stock dkms
// (common.postinst) only builds for the running and the newest kernel, so
// an older fallback kernel would silently lose the module. Failures of
// those modules are errors; everything else stays a warning. Where a
// kernel was left without any version of a module whose build apt-plan
// kept, the kept build is put back (settle). Then it prints
// the summary, keeps it for status and updates the notification file.
func (h *Hooks) PostInvoke(ctx context.Context) error {
	st, err := state.Open(h.Paths, false, h.Report)
	if errors.Is(err, state.ErrNoState) {
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()

	var run state.Run
	var had bool
	if err := st.Locked(ctx, func() (err error) {
		had, err = st.Load(state.RunFile, &run)
		return err
	}); err != nil {
		return err
	}
	if !had {
		return nil // pre-invoke recorded nothing: no DKMS here
	}
	own, previous := h.own(&run)

	tree, err := dkms.ReadTree(h.Paths.DKMSTree())
	if err != nil {
		return err
	}
	var ids []string // the runs whose results this summary shows
	if own != nil {
		ids = append(ids, own.ID)
	}
	for _, p := range previous {
		ids = append(ids, p.ID)
	}
	before := h.Results.Load(st)
	// With a boot pin on record, a module built outside dkms-guard (by
	// hand, by dkms at boot) may have made it unnecessary; with a notice
	// out, a kernel lacks a module that may have become needed since
	// (loaded, listed in modules-load.d, KEEP_KERNEL_FOR changed, or this
	// dkms-guard upgraded from one without modules in use), or dkms's
	// signing key may have been enrolled (Secure Boot): all are looked at
	// again. A machine without trouble keeps the quick path.
	// Kept builds are looked at too, unless each only stands in: one may
	// be put back (its kernel lost the module outside apt's hooks) or
	// dropped (its kernel is gone, its replacement installed).
	removed := removedIn(own, previous)
	settled := !boot.Recorded(h.Paths) && !paths.Exists(h.Paths.Notice()) && keep.Idle(h.Paths, st, tree, removed)
	if own != nil && len(previous) == 0 && len(before.ForRun(ids...)) == 0 && sameTree(own.Snapshot, tree) && settled &&
		!touchesModules(own, tree, loadOwners(st, h.Report)) {
		// No kernel hook ran, no module changed and no package shipping
		// one was touched: whatever dpkg did, it did not touch DKMS. This
		// is the hook's cost on most apt runs (and the metrics' time of
		// the last run, where node_exporter reads them).
		h.Results.RefreshMetrics(before)
		return finish(ctx, st)
	}
	owners, _ := h.ownersOf(ctx, st, tree)
	changed := changedModules(own, previous, tree, owners)
	fresh, err := h.ensure(ctx, own, changed, before, owners)
	if err != nil {
		return err
	}
	fresh = append(fresh, escalate(before.ForRun(ids...), changed, fresh, h.Report)...)
	all, view, err := h.Results.Record(ctx, st, fresh, before)
	if err != nil {
		h.Report.Warnf("%v", err)
	}
	// Before the boot decision and the summary, which then see the
	// builds put back as installed.
	if h.settle(ctx, st, removed) {
		if view, err = h.Results.View(all); err != nil {
			h.Report.Warnf("%v", err)
		}
	}
	lines := h.Boot.Publish(ctx, h.Results, view, "")
	if h.Notes != nil {
		lines = append(slices.Clip(lines), h.Notes(ctx, view)...)
	}
	if rows := all.ForRun(ids...); len(rows) > 0 {
		results.Summary(h.Report, "DKMS modules in this apt run", rows, view, lines, h.Paths.Rel(h.Paths.Notice()))
		last := state.LastRun{Schema: state.Schema, Time: h.Now().UTC(), Rows: rows, Interrupted: previous}
		if own != nil {
			last.Run = own.ID
		}
		if err := st.Save(state.LastRunFile, &last); err != nil {
			h.Report.Warnf("%v", err)
		}
		h.mailFailures(ctx, st, rows, view, lines)
	}
	return finish(ctx, st)
}

// own is run if it is this apt's, else nil: pre-invoke did not record one
// for it, and the dead run's results are reported (it joins the previous
// runs) but neither its plan nor its snapshot is trusted.
func (h *Hooks) own(run *state.Run) (own *state.Run, previous []state.Interrupted) {
	if run.Apt == h.apt() && run.BootID == h.Machine.BootID() {
		return run, run.Previous
	}
	why := h.stale(run)
	if why == "" {
		why = fmt.Sprintf("it belongs to apt pid %d", run.Apt.PID)
	}
	h.Report.Warnf("ignored the plan of the apt run started %s: %s", run.Started.Format("2006-01-02 15:04:05 UTC"), why)
	return nil, append(run.Previous, run.Interrupt(why))
}

// finish ends the run. A crash before it leaves run.json, which the next
// pre-invoke folds into its run: reported twice, never lost.
func finish(ctx context.Context, st *state.Store) error {
	return st.Locked(ctx, func() error { return st.Remove(state.RunFile) })
}

// sameTree tells whether the tree still has exactly the module versions,
// installed for exactly the kernels, that the snapshot recorded.
func sameTree(snap []state.Module, tree dkms.Tree) bool {
	if len(snap) != len(tree) {
		return false
	}
	for i, m := range tree {
		s := snap[i]
		if s.Name != m.Name || s.Version != m.Version || len(s.Kernels) != len(m.Installed) {
			return false
		}
		for _, k := range s.Kernels {
			if !m.InstalledFor(k) {
				return false
			}
		}
	}
	return true
}

// change says why a module counts as changed in this run, for the E: line.
type change struct {
	why string // "its package wifi-dkms was changed in this run: wifi-dkms 1.0 -> 2.0 (upgrade)"
}

// changedModules names the modules whose own package was installed,
// upgraded, reinstalled or configured in this apt's run (own, nil when
// unknown), or in an interrupted run whose post-invoke never finished that
// work, and those with a version that appeared during this run.
func changedModules(own *state.Run, previous []state.Interrupted, tree dkms.Tree, owners map[string]string) map[string]change {
	out := map[string]change{}
	pkgs := map[string]string{}
	for _, p := range previous {
		for _, c := range p.Changed {
			pkgs[c.Package] = fmt.Sprintf("its package %s was changed in the interrupted apt run of %s: %s",
				c.Package, p.Started.Format("2006-01-02 15:04:05 UTC"), describe(c))
		}
	}
	seen := map[string]bool{}
	if own != nil {
		if own.Plan != nil {
			for _, c := range own.Plan.Changes {
				if c.Kind != plan.Remove {
					pkgs[c.Package] = fmt.Sprintf("its package %s was changed in this run: %s", c.Package, describe(c))
				}
			}
		}
		for _, m := range own.Snapshot {
			seen[state.MV{Module: m.Name, Version: m.Version}.Key()] = true
		}
	}
	for _, m := range tree {
		pkg := owners[mvKey(m)]
		if why, ok := pkgs[pkg]; ok && pkg != "" {
			out[m.Name] = change{why: why}
			continue
		}
		if own == nil || seen[mvKey(m)] {
			continue // not this apt's run: what appeared is not known
		}
		why := fmt.Sprintf("%s appeared in this run", report.MV(m.Name, m.Version))
		if pkg != "" {
			why = fmt.Sprintf("its package %s brought it in this run", pkg)
		}
		out[m.Name] = change{why: why}
	}
	return out
}

// describe is a short human form: "wifi-dkms 1.0 -> 2.0 (upgrade)".
func describe(c plan.Change) string {
	switch c.Kind {
	case plan.Install:
		return fmt.Sprintf("%s %s (install)", c.Package, c.NewVersion)
	case plan.Configure, plan.Reinstall:
		return fmt.Sprintf("%s %s (%s)", c.Package, c.NewVersion, c.Kind)
	}
	return fmt.Sprintf("%s %s -> %s (%s)", c.Package, c.OldVersion, c.NewVersion, c.Kind)
}

// ensure installs the newest version of every changed module for every
// kernel with headers, reusing what this apt's run (own, nil when
// unknown) already attempted.
func (h *Hooks) ensure(ctx context.Context, own *state.Run, changed map[string]change, before *state.Results, owners map[string]string) ([]state.Result, error) {
	if len(changed) == 0 {
		return nil, nil
	}
	kernels, err := h.Machine.Kernels()
	if err != nil {
		return nil, err
	}
	if h.Budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, h.Budget,
			fmt.Errorf("post-invoke's time for builds (%s) ran out; dkms-guard rebuild builds the rest", h.Budget))
		defer cancel()
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.End()
	sess.Labels = labels(own, changed, sess.Tree(), owners)
	names := slices.Sorted(maps.Keys(changed))
	var out []state.Result
	var batches []build.Batch
	for _, k := range kernels {
		rows, jobs := h.sortOut(sess, own, k, names, before)
		out = append(out, rows...)
		if len(jobs) > 0 {
			batches = append(batches, build.Batch{Kernel: k, Jobs: jobs})
		}
	}
	// Every kernel's builds in one schedule: they run side by side. The
	// rows stay grouped by kernel, each kernel's builds after its others.
	built := map[string][]state.Result{}
	for _, r := range sess.BuildAll(ctx, batches) {
		built[r.Kernel] = append(built[r.Kernel], r)
	}
	var rows []state.Result
	for _, k := range kernels {
		for _, r := range out {
			if r.Kernel == k {
				rows = append(rows, r)
			}
		}
		rows = append(rows, built[k]...)
	}
	return rows, nil
}

// labels are post-invoke's for its builds: a changed module's failure is
// an error, and each result names the package shipping its newest version.
func labels(own *state.Run, changed map[string]change, tree dkms.Tree, owners map[string]string) build.Labels {
	l := build.Labels{
		By: "post-invoke",
		Severity: func(m string) state.Severity {
			if _, ok := changed[m]; ok {
				return state.SevError
			}
			return state.SevWarning
		},
		Owner: func(m string) string {
			if n, ok := tree.Newest(m); ok {
				return owners[mvKey(n)]
			}
			return ""
		},
	}
	if own != nil {
		l.Run = own.ID
	}
	return l
}

// sortOut goes through the changed modules (names) for kernel k: a row for
// each that needs no build (installed by its package, no headers, failed
// in its package's own postinst), and the jobs to build. What this run
// (own) attempted already is left out: it has its row.
func (h *Hooks) sortOut(sess *build.Session, own *state.Run, k string, names []string, before *state.Results) (rows []state.Result, jobs []dkms.Module) {
	tree := sess.Tree()
	for _, n := range names {
		m, ok := tree.Newest(n)
		if !ok {
			continue // removed in this run
		}
		prev, hadPrev := before.Get(k, n)
		thisRun := own != nil && hadPrev && prev.Run == own.ID && prev.Version == m.Version
		r := sess.Result(m, k, state.Installed)
		switch {
		case m.InstalledFor(k):
			if thisRun && prev.Outcome == state.Installed {
				continue // the kernel hook built it: already a row
			}
			r.Reason = "by its package"
			rows = append(rows, r)
		case !h.Machine.HasHeaders(k):
			r.Outcome = state.Skipped
			r.Reason = "no headers for this kernel are installed"
			h.Report.Notef("%s: not built for %s: no headers for this kernel are installed", report.MV(m.Name, m.Version), report.Name(k))
			rows = append(rows, r)
		case thisRun:
			continue // attempted in this run already; escalate upgrades its row
		case own != nil && failedInRun(h.Paths.DKMSTree(), m, k, own.Started):
			// dkms tried it itself in this run (its package's postinst:
			// dkms 3.2's common.postinst builds for every kernel) and it
			// failed: building it again would only fail again.
			fb, _ := dkms.FailedBuild(h.Paths.DKMSTree(), m)
			r = sess.Failed(m, k, "its package's own build for this kernel failed in this run", fb.Log)
			sess.Complain(r, "%s: build failed for %s in its package's own postinst in this run (not built again)%s",
				report.MV(m.Name, m.Version), report.Name(k), build.LogNote(r))
			rows = append(rows, r)
		default:
			jobs = append(jobs, m)
		}
	}
	return rows, jobs
}

// escalate turns the kernel hooks' warnings about changed modules into
// errors: when they happened the package might still have brought a fixed
// version; after dpkg, a changed module still missing is final. Results
// post-invoke produced itself (fresh) already carry their severity.
func escalate(earlier []state.Result, changed map[string]change, fresh []state.Result, rep *report.Reporter) []state.Result {
	var out []state.Result
	for _, r := range earlier {
		c, ok := changed[r.Module]
		if !ok || r.Severity != state.SevWarning || !r.Missing() || hasResult(fresh, r.Kernel, r.Module) {
			continue
		}
		r.Severity = state.SevError
		rep.Errorf("%s: not installed for %s: %s%s; %s", report.MV(r.Module, r.Version), report.Name(r.Kernel),
			r.Reason, build.LogNote(r), c.why)
		out = append(out, r)
	}
	return out
}

// failedInRun tells whether dkms's own build of m for kernel failed since
// the run started: its make.log, left in the module version's build
// directory, names the kernel.
func failedInRun(tree string, m dkms.Module, kernel string, since time.Time) bool {
	fb, ok := dkms.FailedBuild(tree, m)
	return ok && fb.Kernel == kernel && !fb.Time.Before(since)
}

func hasResult(rs []state.Result, kernel, module string) bool {
	for _, r := range rs {
		if r.Kernel == kernel && r.Module == module {
			return true
		}
	}
	return false
}
