// Package results keeps what became of every module for every kernel and
// says what that means: it merges new build results into results.json,
// computes once per run the per-kernel view (what each kernel has, lacks
// and why, which older builds were put back in place of a newest version
// that failed, whether it is safe to boot), and writes that view out as the
// notice file, the summary after a run and the status listing (show.go);
// Tell (tell.go) refreshes every place people look: the notice,
// update-notifier's hook and the metrics.
package results

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Machine is what the view needs to know of the installed kernels.
type Machine interface {
	Kernels() ([]string, error)
	HasHeaders(kernel string) bool
	Bootable(kernel string) bool
	Release() string
}

// Chooser tells whether autoinstall would build a module version for a
// kernel (build.Builder.Wanted).
type Chooser interface {
	Wanted(m dkms.Module, kernel string) (bool, error)
}

// Recorder records results and derives the per-kernel view.
type Recorder struct {
	Paths   paths.Paths
	Machine Machine
	Chooser Chooser
	Report  *report.Reporter
	// Now and Settings are for the channels (Tell): the metrics' time of
	// the last run and METRICS_DIR. Nil: the clock and the defaults.
	Now      func() time.Time
	Settings func() config.Settings
	// Kept is kept.json as the caller read it (status: with the rest of
	// the state). Nil: View reads it from the state directory, and Record
	// through the store it holds locked.
	Kept *state.Kept
}

// Kernel is one kernel's DKMS modules, from the live tree and the results.
type Kernel struct {
	Kernel    string    `json:"kernel"`
	Running   bool      `json:"running"`
	Bootable  bool      `json:"bootable"` // it has an image in /boot
	Headers   bool      `json:"headers"`
	Installed []string  `json:"installed"`
	Missing   []Missing `json:"missing"`
	// Kept are the builds of Installed that dkms-guard put back because
	// the module's newest version failed or does not support the kernel.
	Kept []Kept `json:"kept"`
}

// Missing is a module a kernel does not have, and why.
type Missing struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	Why     string `json:"why"`
	Reason  Reason `json:"reason"`
	Failed  bool   `json:"failed"` // its build failed: status exits 1
	Log     string `json:"log,omitempty"`
}

// Complete tells whether the kernel has every DKMS module it should.
func (k Kernel) Complete() bool { return len(k.Missing) == 0 }

// Lacks lists the modules the kernel lacks because their build failed.
func (k Kernel) Lacks() []Missing {
	var out []Missing
	for _, m := range k.Missing {
		if m.Failed {
			out = append(out, m)
		}
	}
	return out
}

// Record merges rs into results.json under the state lock and computes
// the view from the merged results and the live tree. It always returns
// the merged results and the view it could build, even with an error, and
// without a store (st nil: state unusable, already reported) it merges in
// memory only, so that the caller can still report them. The caller then
// settles the boot entry and tells people (Tell).
func (r *Recorder) Record(ctx context.Context, st *state.Store, rs []state.Result, before *state.Results) (*state.Results, []Kernel, error) {
	merge := func(all *state.Results) *state.Results {
		for _, x := range rs {
			all.Put(x)
		}
		return all
	}
	if before == nil {
		before = &state.Results{Schema: state.Schema}
	}
	if st == nil {
		all := merge(before)
		view, err := r.View(all)
		return all, view, err
	}
	kept := r.Kept
	var all *state.Results
	var view []Kernel
	err := st.Locked(ctx, func() error {
		if kept == nil {
			kept = r.loadKept(st)
		}
		loaded, err := st.LoadResults()
		if err != nil {
			all = merge(before)
			return err
		}
		all = merge(loaded)
		if err := st.Save(state.ResultsFile, all); err != nil {
			return err
		}
		view, err = r.view(all, kept)
		return err
	})
	if err != nil && view == nil {
		if all == nil {
			all = merge(before)
		}
		if kept == nil {
			kept = r.loadKept(nil) // without the lock: read-only
		}
		view, _ = r.view(all, kept)
	}
	return all, view, err
}

// Load reads results.json without the lock (files are replaced whole); a
// problem is one warning and empty results.
func (r *Recorder) Load(st *state.Store) *state.Results {
	if st == nil {
		return &state.Results{Schema: state.Schema}
	}
	all, err := st.LoadResults()
	if err != nil {
		r.Report.Warnf("%v", err)
	}
	return all
}

// View is every kernel in /lib/modules, newest first, with the modules it
// has and lacks. Modules a kernel does not support, and modules that do
// not ask for AUTOINSTALL, are not missing.
func (r *Recorder) View(all *state.Results) ([]Kernel, error) {
	kept := r.Kept
	if kept == nil {
		kept = r.loadKept(nil)
	}
	return r.view(all, kept)
}

// view is View with kept.json read.
func (r *Recorder) view(all *state.Results, kept *state.Kept) ([]Kernel, error) {
	kernels, err := r.Machine.Kernels()
	if err != nil {
		return nil, err
	}
	tree, err := dkms.ReadTree(r.Paths.DKMSTree())
	if err != nil {
		return nil, err
	}
	running := r.Machine.Release()
	view := []Kernel{}
	for _, k := range kernels {
		v := Kernel{Kernel: k, Running: k == running, Headers: r.Machine.HasHeaders(k), Bootable: r.Machine.Bootable(k),
			Installed: []string{}, Missing: []Missing{}, Kept: []Kept{}}
		for _, name := range tree.Names() {
			if m, ok := tree.InstalledFor(name, k); ok {
				v.Installed = append(v.Installed, report.MV(m.Name, m.Version))
				if b, ok := putBack(kept, k, m); ok {
					v.Kept = append(v.Kept, keptOf(b, all, v.Headers))
				}
				continue
			}
			newest, _ := tree.Newest(name)
			// A result for an older version says nothing of the newest one.
			if res, ok := all.Get(k, name); ok && res.Outcome != state.Installed && res.Version == newest.Version {
				if res.Outcome != state.Unsupported {
					v.Missing = append(v.Missing, Missing{Module: res.Module, Version: res.Version, Why: Describe(res),
						Reason: reasonOf(res, v.Headers), Failed: res.Missing(), Log: res.Log})
				}
				continue
			}
			wanted, err := r.Chooser.Wanted(newest, k)
			if !wanted {
				continue
			}
			why, reason := "not built yet: dkms-guard rebuild --kernel "+report.Name(k), ReasonNotBuilt
			switch {
			case err != nil:
				why, reason = fmt.Sprintf("cannot tell whether it is wanted: %v", err), ReasonUnknown
			case !v.Headers:
				why, reason = "not built: no headers for this kernel are installed", ReasonNoHeaders
			}
			v.Missing = append(v.Missing, Missing{Module: newest.Name, Version: newest.Version, Why: why, Reason: reason})
		}
		view = append(view, v)
	}
	return view, nil
}

// WriteNotice writes the world-readable notification file while a kernel
// lacks a module, runs an older build kept in place of a newer one, or the next boot (boot) or a note (notes) needs saying,
// and removes it once none is so.
func (r *Recorder) WriteNotice(view []Kernel, boot []string, notes ...string) error {
	name := r.Paths.Notice()
	text := Notice(view, boot, r.Paths.Rel(name), notes...)
	if text == nil {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing notice: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("writing notice: %w", err)
	}
	if err := file.WriteAtomicFile(name, text, 0o644); err != nil {
		return fmt.Errorf("writing notice %s: %w", name, err)
	}
	return nil
}
