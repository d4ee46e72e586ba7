package aptrun

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/guard"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// PostInvoke ends a run. For every module whose own package was installed
// or upgraded in it (or whose version appeared in it), it makes sure the
// newest version is installed for every kernel that has headers: stock dkms
// (common.postinst) only builds for the running and the newest kernel, so
// an older fallback kernel would silently lose the module. Failures of
// those modules are errors; everything else stays a warning. Then it prints
// the summary, keeps it for status and updates the notification file.
func PostInvoke(ctx context.Context, e *guard.Env, parent int) error {
	st, err := e.OpenStore(false)
	if errors.Is(err, state.ErrNoState) {
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()

	var run state.Run
	unlock, err := e.Lock(ctx, st)
	if err != nil {
		return err
	}
	had, err := st.Load(state.RunFile, &run)
	unlock()
	if err != nil {
		return err
	}
	if !had {
		return nil // pre-invoke recorded nothing: no DKMS here
	}
	previous := run.Previous
	if apt := e.Proc.Apt(parent); run.Apt != apt || run.BootID != e.Proc.BootID() {
		// Not this apt's run: pre-invoke did not record one for it. Report
		// the dead run's results, but trust neither its plan nor its snapshot.
		why := e.Stale(&run)
		if why == "" {
			why = fmt.Sprintf("it belongs to apt pid %d", run.Apt.PID)
		}
		e.Report.Warnf("ignored the plan of the apt run started %s: %s", run.Started.Format("2006-01-02 15:04:05 UTC"), why)
		previous = append(previous, state.Interrupted{ID: run.ID, Started: run.Started, AptPID: run.Apt.PID, Why: why})
		run = state.Run{ID: ""}
	}

	tree, err := dkms.ReadTree(e.Paths.DKMSTree())
	if err != nil {
		return err
	}
	ids := []string{run.ID}
	for _, p := range previous {
		ids = append(ids, p.ID)
	}
	before := e.LoadResults(st)
	if run.ID != "" && len(previous) == 0 && len(before.ForRun(ids...)) == 0 && sameTree(run.Snapshot, tree) {
		// No kernel hook ran and no module changed: whatever dpkg did, it
		// did not touch DKMS. This is the hook's cost on most apt runs.
		return finish(ctx, e, st)
	}
	owners := ownersOf(ctx, e, tree)
	changed := changedModules(&run, tree, owners)
	fresh, err := ensure(ctx, e, &run, tree, changed, before, owners)
	if err != nil {
		return err
	}
	// A kernel hook's failure of a changed module was a warning when it
	// happened (the package might still have brought a fixed version);
	// now it is final.
	for _, r := range before.ForRun(ids...) {
		c, ok := changed[r.Module]
		if !ok || r.Severity != state.SevWarning || !r.Missing() || hasResult(fresh, r.Kernel, r.Module) {
			continue
		}
		r.Severity = state.SevError
		e.Report.Errorf("%s: not installed for %s: %s%s; %s", report.MV(r.Module, r.Version), report.Name(r.Kernel),
			r.Reason, logNote(r), c.why)
		fresh = append(fresh, r)
	}
	all, err := e.Record(ctx, st, fresh)
	if err != nil {
		// Report what this run read before, so the summary keeps the
		// kernel hooks' rows even when the record could not be updated.
		e.Report.Warnf("%v", err)
		all = before
		for _, r := range fresh {
			all.Put(r)
		}
	}
	rows := all.ForRun(ids...)
	if len(rows) > 0 {
		ks, err := e.KernelStates(all)
		if err != nil {
			e.Report.Warnf("%v", err)
		}
		report.Summary(e.Report, "DKMS modules in this apt run", rows, ks, e.Paths.Rel(e.Paths.Notice()))
		rep := state.Report{Schema: state.Schema, Run: run.ID, Time: e.Now().UTC(), Rows: rows, Interrupted: previous}
		if err := st.Save(state.ReportFile, &rep); err != nil {
			e.Report.Warnf("%v", err)
		}
	}
	return finish(ctx, e, st)
}

// finish ends the run. A crash before it leaves run.json, which the next
// pre-invoke folds into its run: reported twice, never lost.
func finish(ctx context.Context, e *guard.Env, st *state.Store) error {
	unlock, err := e.Lock(ctx, st)
	if err != nil {
		return err
	}
	defer unlock()
	return st.Remove(state.RunFile)
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

type change struct {
	why string // "its package wifi-dkms was upgraded 1.0 -> 2.0 in this run"
}

// changedModules names the modules whose own package was installed,
// upgraded, reinstalled or configured in this run, and those with a
// version that appeared during it.
func changedModules(run *state.Run, tree dkms.Tree, owners map[string]string) map[string]change {
	out := map[string]change{}
	if run.ID == "" {
		return out
	}
	pkgs := run.Plan.Changed()
	seen := map[string]bool{}
	for _, m := range run.Snapshot {
		seen[m.Name+"/"+m.Version] = true
	}
	for _, m := range tree {
		pkg := owners[m.Name+"/"+m.Version]
		if c, ok := pkgs[pkg]; ok && pkg != "" {
			out[m.Name] = change{why: fmt.Sprintf("its package %s was changed in this run: %s", pkg, c.Describe())}
			continue
		}
		if seen[m.Name+"/"+m.Version] {
			continue
		}
		why := fmt.Sprintf("%s appeared in this run", report.MV(m.Name, m.Version))
		if pkg != "" {
			why = fmt.Sprintf("its package %s brought it in this run", pkg)
		}
		out[m.Name] = change{why: why}
	}
	return out
}

// ensure installs the newest version of every changed module for every
// kernel with headers, reusing what this run already attempted.
func ensure(ctx context.Context, e *guard.Env, run *state.Run, tree dkms.Tree, changed map[string]change, before *state.Results, owners map[string]string) ([]state.Result, error) {
	if len(changed) == 0 {
		return nil, nil
	}
	kernels, err := e.Kernels()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(changed))
	for n := range changed {
		names = append(names, n)
	}
	sort.Strings(names)
	eng := e.Engine(run.ID, "post-invoke")
	eng.Severity = func(m string) state.Severity {
		if _, ok := changed[m]; ok {
			return state.SevError
		}
		return state.SevWarning
	}
	eng.Owner = func(m string) string {
		if n, ok := tree.Newest(m); ok {
			return owners[n.Name+"/"+n.Version]
		}
		return ""
	}
	var out []state.Result
	for _, k := range kernels {
		var jobs []dkms.Module
		for _, n := range names {
			m, ok := tree.Newest(n)
			if !ok {
				continue // removed in this run
			}
			r := eng.Result(m, k, state.Installed)
			switch {
			case m.InstalledFor(k):
				if prev, ok := before.Get(k, n); ok && prev.Run == run.ID && prev.Version == m.Version && prev.Outcome == state.Installed {
					continue // the kernel hook built it: already a row
				}
				r.Reason = "by its package"
				out = append(out, r)
			case !eng.HasHeaders(k):
				r.Outcome = state.Skipped
				r.Reason = "no headers for this kernel are installed"
				e.Report.Notef("%s: not built for %s: no headers for this kernel are installed", report.MV(m.Name, m.Version), report.Name(k))
				out = append(out, r)
			default:
				if prev, ok := before.Get(k, n); ok && prev.Run == run.ID && prev.Version == m.Version && prev.Outcome != state.Installed {
					continue // attempted in this run already; its row is upgraded by the caller
				}
				jobs = append(jobs, m)
			}
		}
		if len(jobs) > 0 {
			out = append(out, eng.Build(ctx, tree, k, jobs)...)
		}
	}
	return out, nil
}

func hasResult(rs []state.Result, kernel, module string) bool {
	for _, r := range rs {
		if r.Kernel == kernel && r.Module == module {
			return true
		}
	}
	return false
}

func logNote(r state.Result) string {
	if r.Log == "" {
		return ""
	}
	return ", see " + r.Log
}
