package apthook

import (
	"context"
	"slices"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Keeper keeps a module's last working build until its replacement is
// installed (keep.Keeper).
type Keeper interface {
	Keep(ctx context.Context, st *state.Store, wants []keep.Want, run string)
	Settle(ctx context.Context, st *state.Store, tree dkms.Tree, opt keep.Options) ([]state.KeptBuild, error)
}

// replaces tells whether dpkg, making change c, runs the old package's
// prerm with "upgrade" for a version the administrator did not choose to
// give up: dh_dkms's prerm then runs `dkms remove --all` for the installed
// version before the new one is known to build. A downgrade does that too,
// but it is a choice, as a removal is: putting the newer build back would
// undo it for good (rebuild never retries an older version), so nothing is
// kept, as with stock dkms.
func replaces(k plan.Kind) bool {
	return k == plan.Upgrade || k == plan.Reinstall
}

// wants are the module versions in tree whose package (owners) changes
// replaces, each with the kernels it is installed for.
func wants(changes []plan.Change, tree dkms.Tree, owners map[string]string) []keep.Want {
	replaced := map[string]bool{}
	for _, c := range changes {
		if replaces(c.Kind) {
			replaced[c.Package] = true
		}
	}
	if len(replaced) == 0 {
		return nil
	}
	var out []keep.Want
	for _, m := range tree {
		pkg := owners[mvKey(m)]
		if pkg == "" || !replaced[pkg] || len(m.Installed) == 0 {
			continue
		}
		w := keep.Want{Module: m.Name, Version: m.Version, Package: pkg, Why: state.KeptForUpgrade}
		for k := range m.Installed {
			w.Kernels = append(w.Kernels, k)
		}
		slices.Sort(w.Kernels)
		out = append(out, w)
	}
	return out
}

// keepBuilds keeps, before dpkg runs, the installed builds of the module
// versions that changes replace. It takes the build lock first and then
// the state lock, in the builders' order (a rebuild holding the build
// lock records its results under the state lock). Cheap when nothing
// shipping a module is upgraded (tree: as apt-plan read it): no lock, no
// dkms.
func (h *Hooks) keepBuilds(ctx context.Context, changes []plan.Change, tree dkms.Tree, owners map[string]string, run string) {
	if h.Keeper == nil || len(wants(changes, tree, owners)) == 0 {
		return
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		h.Report.Warnf("apt-plan: nothing kept: %v", err)
		return
	}
	defer sess.End()
	st := sess.Store()
	w := wants(changes, sess.Tree(), owners)
	if st == nil || len(w) == 0 {
		return // an unusable state directory has said so
	}
	if err := st.Locked(ctx, func() error {
		h.Keeper().Keep(ctx, st, w, run)
		return nil
	}); err != nil {
		h.Report.Warnf("apt-plan: nothing kept: %v", err)
	}
}

// settle puts back the kept builds whose kernel was left without their
// module and drops those no longer needed (keep.Keeper.Settle), under the
// build lock and then the state lock, once the run's results are recorded
// (they name the version that failed, and its log). removed are the
// packages removed in this run: their modules' kept builds are dropped,
// never put back. It tells whether dkms's tree may have changed. While
// every kept build only stands in (keep.Idle), it takes no lock.
func (h *Hooks) settle(ctx context.Context, st *state.Store, removed map[string]bool) bool {
	if h.Keeper == nil {
		return false
	}
	if tree, err := dkms.ReadTree(h.Paths.DKMSTree()); err == nil && keep.Idle(h.Paths, st, tree, removed) {
		return false
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		h.Report.Warnf("kept builds not looked at: %v", err)
		return false
	}
	defer sess.End()
	if err := st.Locked(ctx, func() error {
		_, err := h.Keeper().Settle(ctx, st, sess.Tree(), keep.Options{Removed: removed})
		return err
	}); err != nil {
		h.Report.Warnf("kept builds: %v", err)
	}
	return true
}

// removedIn are the packages own's plan removes, and those the
// interrupted runs before it (previous) removed.
func removedIn(own *state.Run, previous []state.Interrupted) map[string]bool {
	out := map[string]bool{}
	for _, p := range previous {
		for _, pkg := range p.Removed {
			out[pkg] = true
		}
	}
	if own == nil || own.Plan == nil {
		return out
	}
	for _, c := range own.Plan.Changes {
		if c.Kind == plan.Remove {
			out[c.Package] = true
		}
	}
	return out
}
