package results

// Kept builds (package keep, kept.json): a module's last working build,
// archived before an upgrade, is put back for a kernel when the version
// that was to replace it failed there or does not support it. The view
// lists it with what that kernel has (it is installed: not missing, and
// the boot decision counts it), and every channel says it, as "kept an
// older build", until the replacement installs and keep drops it.

import (
	"fmt"
	"slices"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Kept is an older build of a module that dkms-guard put back for a
// kernel (package keep) because the version that was to replace it failed
// there or does not support it. The kernel has the module, so it is not
// missing and the boot decision counts it, but that news is told.
type Kept struct {
	Module  string `json:"module"`
	Version string `json:"version"` // the version kept, installed now
	// Failed is the version that did not install; the same as Version
	// when the kernel's own rebuild of it failed.
	Failed string `json:"failed_version"`
	Why    string `json:"why"`
	Reason Reason `json:"reason"`
	Log    string `json:"log,omitempty"`
}

// loadKept reads kept.json through st, or without st from the state
// directory opened read-only (without the lock: files are replaced whole).
// No state directory is no kept builds; a file that cannot be read is one
// W: line and no kept builds; a state directory that cannot be opened is
// no kept builds, its trouble being the opener's to report.
func (r *Recorder) loadKept(st *state.Store) *state.Kept {
	kept := &state.Kept{Schema: state.Schema}
	if st == nil {
		ro, err := state.OpenReadOnly(r.Paths, r.Report)
		if err != nil {
			return kept
		}
		defer ro.Close()
		st = ro
	}
	loaded, err := st.LoadKept()
	if err != nil {
		r.Report.Warnf("%v", err)
		return kept
	}
	return &loaded
}

// putBack is the kept build of m put back for kernel, if m is that build:
// a kept build still waiting (not put back) or one whose replacement is
// installed is no news.
func putBack(kept *state.Kept, kernel string, m dkms.Module) (state.KeptBuild, bool) {
	for _, b := range kept.Builds {
		if !b.PutBack.IsZero() && b.Kernel == kernel && b.Module == m.Name && b.Version == m.Version {
			return b, true
		}
	}
	return state.KeptBuild{}, false
}

// keptOf is the view of a kept build b that was put back: why its
// replacement is not installed, from that version's result (headers: the
// kernel has its headers), else from what kept.json recorded.
func keptOf(b state.KeptBuild, all *state.Results, headers bool) Kept {
	k := Kept{Module: b.Module, Version: b.Version, Failed: b.Failed, Log: b.FailedLog}
	if res, ok := all.Get(b.Kernel, b.Module); ok && res.Outcome != state.Installed && (res.Version == b.Failed || b.Failed == "") {
		k.Failed, k.Why, k.Reason, k.Log = res.Version, Describe(res), reasonOf(res, headers), res.Log
		if res.Outcome == state.Unsupported {
			k.Reason = ReasonUnsupported
		}
		return k
	}
	// results.json no longer has that result (moved aside as corrupt).
	k.Why, k.Reason = "did not install", ReasonUnknown
	if b.FailedLog != "" {
		k.Why, k.Reason = "FAILED, log "+report.Name(b.FailedLog), ReasonBuildFailed
	}
	return k
}

// keptText is what a kept build stands for, after "kept": the build and
// why the version that was to replace it is not installed.
func keptText(kp Kept) string {
	mv := report.MV(kp.Module, kp.Version)
	switch kp.Failed {
	case kp.Version:
		return fmt.Sprintf("the earlier build of %s: its rebuild %s", mv, report.Text(kp.Why))
	case "": // kept.json and results.json do not say which version
		return fmt.Sprintf("the earlier build of %s: the version to replace it %s", mv, report.Text(kp.Why))
	}
	age := "an older"
	if dkms.VersionLess(kp.Failed, kp.Version) {
		age = "a newer" // the package was downgraded
	}
	return fmt.Sprintf("%s version %s: %s %s", age, mv, report.MV(kp.Module, kp.Failed), report.Text(kp.Why))
}

// keptShort is a kept build in a headline: the build and, in brackets,
// what became of its replacement.
func keptShort(kp Kept) string {
	mv := report.MV(kp.Module, kp.Version)
	switch {
	case kp.Failed == kp.Version:
		return mv + " (its rebuild failed)"
	case kp.Failed == "":
		return mv + " (no version replaced it)"
	case kp.Reason == ReasonUnsupported:
		return mv + " (" + report.MV(kp.Module, kp.Failed) + " does not support it)"
	case kp.Reason == ReasonNoHeaders:
		return mv + " (" + report.MV(kp.Module, kp.Failed) + " not built: no headers)"
	}
	return mv + " (" + report.MV(kp.Module, kp.Failed) + " did not build)"
}

// retryKept is the command that retries the versions the kept builds
// stand in for, "" when none can be retried (a version that does not
// support the kernel will not build by trying again, and one not built
// for lack of headers is built by the headers' own hook).
func retryKept(view []Kernel) string {
	var modules []string
	for _, k := range view {
		for _, kp := range k.Kept {
			if kp.Reason != ReasonUnsupported && kp.Reason != ReasonNoHeaders && !slices.Contains(modules, kp.Module) {
				modules = append(modules, kp.Module)
			}
		}
	}
	if len(modules) == 0 {
		return ""
	}
	cmd := "dkms-guard rebuild"
	for _, m := range modules {
		cmd += " --module " + report.Name(m)
	}
	return cmd
}

// keptUnsupported tells whether a kernel runs a kept build because the
// newer version does not support it: no rebuild replaces that one.
func keptUnsupported(view []Kernel) bool {
	for _, k := range view {
		for _, kp := range k.Kept {
			if kp.Reason == ReasonUnsupported {
				return true
			}
		}
	}
	return false
}

// Space is what the kept builds take: status's "kept".
type Space struct {
	Dir     string `json:"dir"`      // where the archives are
	Builds  int    `json:"builds"`   // builds kept
	PutBack int    `json:"put_back"` // of them, put back in place of a newer version
	Bytes   int64  `json:"bytes"`    // the archives' size
}

// KeptSpace is what kept's builds take; dir is where their archives are
// (paths.KeptDir, as status shows it). An archive two builds share counts
// once.
func KeptSpace(kept *state.Kept, dir string) Space {
	s := Space{Dir: dir}
	seen := map[string]bool{}
	for _, b := range kept.Builds {
		s.Builds++
		if !b.PutBack.IsZero() {
			s.PutBack++
		}
		if !seen[b.Archive] {
			seen[b.Archive] = true
			s.Bytes += b.Size
		}
	}
	return s
}

// String is the space in status's words, "" without kept builds. The
// ones put back are listed under their kernels; the others wait for the
// run that kept them to settle.
func (s Space) String() string {
	if s.Builds == 0 {
		return ""
	}
	return fmt.Sprintf("%d (%d of them put back), %s in %s", s.Builds, s.PutBack, size(s.Bytes), s.Dir)
}

// size is n bytes for people: B, KiB, MiB or GiB, one decimal.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 2 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMG"[i])
}
