// Package guard holds what every dkms-guard entry point shares: the
// environment (root, programs, reporter), the recording of build results
// with the notification file, and the per-kernel view of what is missing.
package guard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/kernelhook"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/proc"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// OwnerQuery finds the packages shipping paths (dpkg-query -S).
type OwnerQuery interface {
	Owners(ctx context.Context, paths []string) (map[string]string, error)
}

// Env is one dkms-guard invocation's view of the system.
type Env struct {
	Paths       paths.Paths
	Proc        proc.Reader
	Owners      OwnerQuery
	DKMS        kernelhook.Installer
	Report      *report.Reporter
	Arch        string
	Now         func() time.Time
	LockTimeout time.Duration
}

// OpenStore opens the state directory; see state.Open for create.
func (e *Env) OpenStore(create bool) (*state.Store, error) {
	return state.Open(e.Paths.StateDir(), create, e.Report)
}

// Locked runs fn with the state directory open and its lock held. A
// missing directory (with create false) means nothing was ever recorded:
// fn is not called and Locked returns nil.
func (e *Env) Locked(ctx context.Context, create bool, fn func(st *state.Store) error) error {
	st, err := e.OpenStore(create)
	if errors.Is(err, state.ErrNoState) {
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()
	unlock, err := e.Lock(ctx, st)
	if err != nil {
		return err
	}
	defer unlock()
	return fn(st)
}

// Lock takes the state lock for at most LockTimeout.
func (e *Env) Lock(ctx context.Context, st *state.Store) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, e.LockTimeout)
	defer cancel()
	return st.Lock(ctx)
}

// Engine returns a build engine for this environment.
func (e *Env) Engine(runID, by string) *kernelhook.Engine {
	return &kernelhook.Engine{
		Paths: e.Paths, DKMS: e.DKMS, Report: e.Report, Arch: e.Arch,
		RunID: runID, By: by, Now: e.Now,
	}
}

// Kernels lists the kernels in /lib/modules, newest first (dkms's VER order).
func (e *Env) Kernels() ([]string, error) {
	ents, err := os.ReadDir(e.Paths.ModulesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing kernels: %w", err)
	}
	var out []string
	for _, en := range ents {
		if en.IsDir() {
			out = append(out, en.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return dkms.VER(out[i]) > dkms.VER(out[j]) })
	return out, nil
}

// Record merges rs into results.json under the lock, then rewrites the
// notification file from the merged results and the live tree. It always
// returns the merged results it could build, even with an error (or
// without a store: st nil), so that the caller can still report them.
func (e *Env) Record(ctx context.Context, st *state.Store, rs []state.Result) (*state.Results, error) {
	all := &state.Results{Schema: state.Schema}
	merged := func() *state.Results {
		for _, r := range rs {
			all.Put(r)
		}
		return all
	}
	if st == nil {
		return merged(), nil
	}
	unlock, err := e.Lock(ctx, st)
	if err != nil {
		return merged(), err
	}
	defer unlock()
	if all, err = st.LoadResults(); err != nil {
		return merged(), err
	}
	if err := st.Save(state.ResultsFile, merged()); err != nil {
		return all, err
	}
	return all, e.WriteNotice(all)
}

// LoadResults reads results.json without the lock (files are replaced whole).
func (e *Env) LoadResults(st *state.Store) *state.Results {
	if st == nil {
		return &state.Results{Schema: state.Schema}
	}
	all, err := st.LoadResults()
	if err != nil {
		e.Report.Warnf("%v", err)
	}
	return all
}

// KernelStates tells, for every kernel in /lib/modules, which modules it
// lacks because their build failed (and are still not installed now), and
// whether it has every module it should (then it is safe to boot).
func (e *Env) KernelStates(all *state.Results) ([]report.KernelState, error) {
	views, err := e.Status(all)
	if err != nil {
		return nil, err
	}
	out := make([]report.KernelState, 0, len(views))
	for _, v := range views {
		ks := report.KernelState{Kernel: v.Kernel, Bootable: v.Bootable, Complete: len(v.Missing) == 0}
		for _, m := range v.Missing {
			if r, ok := all.Get(v.Kernel, m.Module); ok && m.Failed {
				ks.Lacks = append(ks.Lacks, r)
			}
		}
		out = append(out, ks)
	}
	return out, nil
}

// WriteNotice writes the world-readable notification file while a kernel
// lacks a module, and removes it once none does.
func (e *Env) WriteNotice(all *state.Results) error {
	ks, err := e.KernelStates(all)
	if err != nil {
		return err
	}
	name := e.Paths.Notice()
	text := report.Notice(ks, e.Paths.Rel(name))
	if text == nil {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing notice: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("writing notice: %w", err)
	}
	root, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return fmt.Errorf("writing notice: %w", err)
	}
	defer root.Close()
	if err := state.WriteAtomic(root, filepath.Base(name), text, 0o644); err != nil {
		return fmt.Errorf("writing notice %s: %w", name, err)
	}
	return nil
}

// LiveRun returns the apt run in progress: run.json whose apt process
// still runs in this boot. A run.json from a dead apt or an earlier boot is
// stale and never trusted as the current plan.
func (e *Env) LiveRun(st *state.Store) (*state.Run, bool) {
	if st == nil {
		return nil, false
	}
	var run state.Run
	ok, err := st.Load(state.RunFile, &run)
	if err != nil {
		e.Report.Warnf("%v", err)
		return nil, false
	}
	if !ok || e.Stale(&run) != "" {
		return nil, false
	}
	return &run, true
}

// Stale says why run is no longer in progress, "" when it is.
func (e *Env) Stale(run *state.Run) string {
	if boot := e.Proc.BootID(); boot != "" && run.BootID != boot {
		return "the machine rebooted since"
	}
	if !e.Proc.Alive(run.Apt) {
		return fmt.Sprintf("apt (pid %d) is gone", run.Apt.PID)
	}
	return ""
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
