// Package aptrun implements the three apt hooks that bracket one dpkg run:
//
//	DPkg::Pre-Invoke       pre-invoke  snapshot the DKMS tree and its owners
//	DPkg::Pre-Install-Pkgs apt-plan    record what dpkg will install/upgrade/remove
//	DPkg::Post-Invoke      post-invoke build upgraded modules for every kernel, report
//
// apt runs them in that order for each dpkg run (apt-pkg/deb/dpkgpm.cc,
// pkgDPkgPM::Go). They talk through run.json; the kernel hooks that run
// inside dpkg add their results to results.json tagged with the run's id.
//
// Policy: none of these hooks may make apt fail because of a module. They
// return an error only when dkms-guard itself cannot work; the caller turns
// that into an E: line (and, for post-invoke alone, a non-zero exit).
package aptrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/guard"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// PreInvoke starts a run: it folds a run that never reached post-invoke
// into this one and snapshots the DKMS tree. Which package owns each module
// is asked of dpkg only after dpkg ran, and only if the tree changed:
// `dpkg-query -S` reads every package's file list (about 150 ms on a
// desktop), too much for a hook that runs before every dpkg call.
// parent is the hook's parent pid, from which apt is found.
func PreInvoke(ctx context.Context, e *guard.Env, parent int) error {
	treeExists := exists(e.Paths.DKMSTree())
	// No DKMS tree and nothing recorded: nothing to guard. This is the cost
	// of the hook on a machine without DKMS modules: two lstat calls.
	return e.Locked(ctx, treeExists, func(st *state.Store) error {
		return preInvoke(e, st, treeExists, parent)
	})
}

func preInvoke(e *guard.Env, st *state.Store, treeExists bool, parent int) error {
	apt := e.Proc.Apt(parent)
	boot := e.Proc.BootID()
	var old state.Run
	had, err := st.Load(state.RunFile, &old)
	if err != nil {
		return err
	}
	now := e.Now().UTC()
	run := state.Run{
		Schema:  state.Schema,
		ID:      now.Format("20060102T150405Z") + "-" + strconv.Itoa(apt.PID),
		Started: now,
		BootID:  boot,
		Apt:     apt,
	}
	if had {
		if old.Apt == apt && old.BootID == boot {
			// The same apt runs dpkg again (apt may split one run into
			// several dpkg batches): the first snapshot is the "before".
			return nil
		}
		why := e.Stale(&old)
		if why == "" {
			why = fmt.Sprintf("another apt (pid %d) started dpkg while it still ran", apt.PID)
		}
		e.Report.Warnf("the apt run started %s (pid %d) ended without post-invoke: %s; its results are in this run's summary",
			old.Started.Format("2006-01-02 15:04:05 UTC"), old.Apt.PID, why)
		run.Previous = append(old.Previous, state.Interrupted{ID: old.ID, Started: old.Started, AptPID: old.Apt.PID, Why: why})
	}
	if treeExists {
		tree, err := dkms.ReadTree(e.Paths.DKMSTree())
		if err != nil {
			return err
		}
		run.Snapshot = Snapshot(tree)
	}
	return st.Save(state.RunFile, &run)
}

// Snapshot lists the DKMS tree: every module version and the kernels it
// is installed for.
func Snapshot(tree dkms.Tree) []state.Module {
	snap := make([]state.Module, 0, len(tree))
	for _, m := range tree {
		sm := state.Module{Name: m.Name, Version: m.Version}
		for k := range m.Installed {
			sm.Kernels = append(sm.Kernels, k)
		}
		sort.Strings(sm.Kernels)
		snap = append(snap, sm)
	}
	return snap
}

// ownersOf maps "M/V" to the package shipping its source in /usr/src
// (dkms's $source_tree/M-V); modules no package ships are foreign. A failed
// query leaves every module foreign, with a warning, which only lowers
// failures from E: to W:.
func ownersOf(ctx context.Context, e *guard.Env, mods []dkms.Module) map[string]string {
	out := map[string]string{}
	if len(mods) == 0 {
		return out
	}
	byPath := map[string]string{}
	var query []string
	for _, m := range mods {
		p := e.Paths.Rel(filepath.Join(e.Paths.SourceTree(), m.Name+"-"+m.Version))
		byPath[p] = m.Name + "/" + m.Version
		query = append(query, p)
	}
	owners, err := e.Owners.Owners(ctx, query)
	if err != nil {
		e.Report.Warnf("cannot tell which packages own the DKMS modules: %v", err)
		return out
	}
	for p, pkg := range owners {
		out[byPath[p]] = pkg
	}
	return out
}

// AptPlan records the package changes apt announces on r (protocol
// version 3) into the run pre-invoke started. It always reads r to its
// end: apt must never see its pipe closed early.
func AptPlan(ctx context.Context, e *guard.Env, r io.Reader, parent int) error {
	p, perr := plan.Parse(r)
	if perr != nil {
		return perr
	}
	return e.Locked(ctx, false, func(st *state.Store) error {
		var run state.Run
		had, err := st.Load(state.RunFile, &run)
		if err != nil || !had {
			return err // pre-invoke recorded nothing: no DKMS here
		}
		if apt := e.Proc.Apt(parent); run.Apt != apt {
			e.Report.Warnf("apt-plan: the recorded run belongs to apt pid %d, not pid %d; plan not recorded", run.Apt.PID, apt.PID)
			return nil
		}
		if run.Plan == nil {
			run.Plan = p
		} else {
			run.Plan.Changes = append(run.Plan.Changes, p.Changes...)
		}
		return st.Save(state.RunFile, &run)
	})
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}
