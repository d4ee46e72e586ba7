// Package apthook implements the three apt hooks that bracket one dpkg run,
// one method of Hooks per phase:
//
//	DPkg::Pre-Invoke       PreInvoke  snapshot the DKMS tree
//	DPkg::Pre-Install-Pkgs AptPlan    record what dpkg will install/upgrade/remove,
//	                                  keep the builds an upgrade removes
//	DPkg::Post-Invoke      PostInvoke build upgraded modules for every kernel,
//	                                  put kept builds back where needed, report
//
// apt runs them in that order for each dpkg run (apt-pkg/deb/dpkgpm.cc,
// pkgDPkgPM::Go). They talk through run.json; the kernel hooks that run
// inside dpkg add their results to results.json tagged with the run's id.
//
// Policy: none of these hooks may make apt fail because of a module. They
// return an error only when dkms-guard itself cannot work; the caller turns
// that into an E: line.
package apthook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Machine is what the apt hooks need to know of the machine.
type Machine interface {
	Kernels() ([]string, error)
	HasHeaders(kernel string) bool
	BootID() string
	Apt(parent int) host.Proc
	Alive(p host.Proc) bool
}

// OwnerQuery finds the packages shipping paths (dpkg-query -S).
type OwnerQuery interface {
	Owners(ctx context.Context, paths []string) (map[string]string, error)
}

// Boot keeps the default boot entry right and writes the notice.
type Boot interface {
	Publish(ctx context.Context, rec *results.Recorder, view []results.Kernel, exclude string) []string
}

// Hooks runs the apt phases. Parent is the hook's parent pid, from which
// apt is found.
type Hooks struct {
	Paths   paths.Paths
	Machine Machine
	Owners  OwnerQuery
	Builder *build.Builder
	Results *results.Recorder
	Boot    Boot
	Report  *report.Reporter
	Now     func() time.Time
	Parent  int
	// Budget bounds the builds post-invoke adds after dpkg (0: none): what
	// is left when it runs out is not built, said so, for rebuild to do.
	Budget time.Duration
	// Notes, when set, are more lines for the summary (Secure Boot's).
	Notes func(ctx context.Context, view []results.Kernel) []string
	// Mail, when set, mails failed builds to unattended-upgrades'
	// administrator where unattended-upgrades would not (uumail.go).
	Mail *UUMail
	// Keeper, when set, gives what keeps the last working builds (keep.go);
	// it is called only when something may be kept or put back, so the
	// settings are read only then.
	Keeper func() Keeper
}

func (h *Hooks) apt() state.Proc { return h.Machine.Apt(h.Parent) }

func (h *Hooks) stale(run *state.Run) string { return run.Stale(h.Machine.BootID(), h.Machine.Alive) }

// open runs fn with the state directory open and locked; see state.Update.
func (h *Hooks) open(ctx context.Context, create bool, fn func(st *state.Store) error) error {
	return state.Update(ctx, h.Paths, create, h.Report, fn)
}

// PreInvoke starts a run: it folds a run that never reached post-invoke
// into this one and snapshots the DKMS tree. Which package owns each module
// is asked of dpkg only after dpkg ran, and only if the tree changed:
// `dpkg-query -S` reads every package's file list (about 150 ms on a
// desktop), too much for a hook that runs before every dpkg call.
func (h *Hooks) PreInvoke(ctx context.Context) error {
	treeExists := paths.Exists(h.Paths.DKMSTree())
	// No DKMS tree and nothing recorded: nothing to guard. This is the cost
	// of the hook on a machine without DKMS modules: two stat calls.
	return h.open(ctx, treeExists, func(st *state.Store) error {
		return h.preInvoke(st, treeExists)
	})
}

func (h *Hooks) preInvoke(st *state.Store, treeExists bool) error {
	apt := h.apt()
	boot := h.Machine.BootID()
	var old state.Run
	had, err := st.Load(state.RunFile, &old)
	if err != nil {
		return err
	}
	now := h.Now().UTC()
	run := state.Run{
		Schema:  state.Schema,
		ID:      now.Format("20060102T150405.000000000Z") + "-" + strconv.Itoa(apt.PID),
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
		why := h.stale(&old)
		if why == "" {
			why = fmt.Sprintf("another apt (pid %d) started dpkg while it still ran", apt.PID)
		}
		where := "it recorded no build results"
		if all, err := st.LoadResults(); err == nil && len(all.ForRun(old.ID)) > 0 {
			where = "its results are in this run's summary"
		}
		h.Report.Warnf("the apt run started %s (pid %d) ended without post-invoke: %s; %s",
			old.Started.Format("2006-01-02 15:04:05 UTC"), old.Apt.PID, why, where)
		run.Previous = append(old.Previous, old.Interrupt(why))
	}
	if treeExists {
		tree, err := dkms.ReadTree(h.Paths.DKMSTree())
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

// AptPlan records the package changes apt announces on r (protocol
// version 3) into the run pre-invoke started: those of the packages that
// ship a DKMS module (owners.json, dpkg-query for the modules it lacks:
// once per new module version, in the run that brings it) or have "dkms"
// in their name, the only ones post-invoke looks at; every package when
// the owners cannot all be told. A run of
// thousands of packages is read as a stream and costs no more memory, or
// run.json space, than the few it keeps. It always reads r to its end:
// apt must never see its pipe closed early.
//
// Then, before dpkg starts, it keeps the installed builds of the module
// versions whose package the run upgrades or reinstalls (keepBuilds):
// their package's prerm removes them before the new version is known to
// build. A downgrade, like a removal, is the administrator's choice.
func (h *Hooks) AptPlan(ctx context.Context, r io.Reader) error {
	defer io.Copy(io.Discard, r)
	var perr error
	// What the run replaces, kept once run.json is saved and the state
	// lock released (keepBuilds takes the build lock first).
	var changes []plan.Change
	var tree dkms.Tree
	var owners map[string]string
	var runID string
	err := h.open(ctx, false, func(st *state.Store) error {
		var run state.Run
		had, err := st.Load(state.RunFile, &run)
		if err != nil || !had {
			return err // pre-invoke recorded nothing: no DKMS here
		}
		if apt := h.apt(); run.Apt != apt {
			h.Report.Warnf("apt-plan: the recorded run belongs to apt pid %d, not pid %d; plan not recorded", run.Apt.PID, apt.PID)
			return nil
		}
		var keep func([]byte) bool // nil: every package
		complete := false
		if tree, err = dkms.ReadTree(h.Paths.DKMSTree()); err != nil {
			h.Report.Warnf("apt-plan: %v; recording every package", err)
		} else {
			owners, complete = h.ownersOf(ctx, st, tree)
		}
		if complete {
			ships := map[string]bool{}
			for _, pkg := range owners {
				ships[pkg] = true
			}
			keep = func(pkg []byte) bool {
				return ships[string(pkg)] || bytes.Contains(pkg, []byte("dkms"))
			}
		}
		p, err := plan.ParseKeeping(r, keep)
		if err != nil {
			perr = err
			return nil
		}
		for _, b := range p.Bad {
			h.Report.Warnf("apt-plan: ignored %s: it does not follow apt's protocol version 3; the other lines were kept", b)
		}
		if p.BadMore > 0 {
			h.Report.Warnf("apt-plan: ignored %d more lines that do not follow apt's protocol version 3", p.BadMore)
		}
		if len(p.Changes) == 0 {
			return nil // nothing kept: run.json stays as pre-invoke wrote it, no write
		}
		if run.Plan == nil {
			run.Plan = &state.Plan{}
		}
		run.Plan.Changes = append(run.Plan.Changes, p.Changes...)
		changes, runID = p.Changes, run.ID
		return st.Save(state.RunFile, &run)
	})
	if perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	h.keepBuilds(ctx, changes, tree, owners, runID)
	return nil
}

// ownersOf maps "M/V" to the package shipping its source in /usr/src
// (dkms's $source_tree/M-V); modules no package ships are foreign. Known
// owners come from owners.json; only versions not in it are asked of
// dpkg-query, and the answer is kept. A failed query leaves those modules
// foreign, with a warning, which only lowers failures from E: to W:;
// complete then says false.
func (h *Hooks) ownersOf(ctx context.Context, st *state.Store, tree dkms.Tree) (owners map[string]string, complete bool) {
	complete = true
	cache := loadOwners(st, h.Report)
	byPath := map[string]string{}
	var query []string
	for _, m := range tree {
		key := mvKey(m)
		if _, ok := cache.Owners[key]; ok {
			continue
		}
		p := h.Paths.Rel(filepath.Join(h.Paths.SourceTree(), m.Name+"-"+m.Version))
		byPath[p] = key
		query = append(query, p)
	}
	if len(query) > 0 {
		found, err := h.Owners.Owners(ctx, query)
		if err != nil {
			h.Report.Warnf("cannot tell which packages own the DKMS modules: %v", err)
			complete = false
		} else {
			for p, key := range byPath {
				cache.Owners[key] = found[p]
			}
		}
	}
	out := map[string]string{}
	kept := map[string]string{}
	for _, m := range tree {
		key := mvKey(m)
		if pkg, ok := cache.Owners[key]; ok {
			kept[key] = pkg
			if pkg != "" {
				out[key] = pkg
			}
		}
	}
	if len(query) > 0 || len(kept) != len(cache.Owners) {
		cache.Owners = kept
		if err := st.Save(state.OwnersFile, &cache); err != nil {
			h.Report.Warnf("%v", err)
		}
	}
	return out, complete
}

// mvKey is m's "module/version" key, as owners.json keeps it.
func mvKey(m dkms.Module) string { return state.MV{Module: m.Name, Version: m.Version}.Key() }

func loadOwners(st *state.Store, rep *report.Reporter) state.Owners {
	cache := state.Owners{Schema: state.Schema}
	if _, err := st.Load(state.OwnersFile, &cache); err != nil {
		rep.Warnf("%v", err)
	}
	cache.Schema = state.Schema
	if cache.Owners == nil {
		cache.Owners = map[string]string{}
	}
	return cache
}

// touchesModules tells whether the run may have changed a module without
// changing the tree: a package it installs, upgrades, reinstalls or
// configures ships a module (a new package revision with the same module
// version, common.postinst run again), or some module's owner was never
// looked up. Only owners.json is read: the quick path stays quick.
func touchesModules(run *state.Run, tree dkms.Tree, cache state.Owners) bool {
	ships := map[string]bool{}
	for _, m := range tree {
		pkg, ok := cache.Owners[mvKey(m)]
		if !ok {
			return true
		}
		if pkg != "" {
			ships[pkg] = true
		}
	}
	if run.Plan == nil {
		return false
	}
	for _, c := range run.Plan.Changes {
		if c.Kind != plan.Remove && ships[c.Package] {
			return true
		}
	}
	return false
}
