package keep

// What keeping says (the policy is report's):
//
//   - E: one line per module and version put back where the version that
//     was to replace it failed: which version failed (and its logs), which
//     was kept, for which kernels, how to retry (when dkms's tree has a
//     version to retry). A failure its build reported as a W: line (a
//     kernel's rebuild of a module whose package did not change) stays a
//     W: line: one event is not a warning first and an error next. A
//     build that cannot be put back, or does not fit its reinstalled
//     kernel, is an E: line of its own.
//   - W: the new version does not support those kernels (dkms exit 77), or
//     was not built there at all (no headers: the kernel hook builds it
//     once they are installed): nothing failed and nothing to retry, the
//     machine works with the kept build. A build that cannot be kept
//     before the upgrade.
//   - N: a kept build that was put back is dropped (status showed it):
//     why, for which kernels. Dropping an archive nobody saw is silent.
//     When dkms-guard is removed, a version it put back from an archive
//     with its source stays installed: one line names it and the commands
//     that remove it (rm -rf only of the /usr/src directory the put-back
//     made). A kernel's build put back after its reinstall is the build
//     dkms had before: nothing to say.

import (
	"fmt"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// putGroup is the kept builds of one module version put back for one
// reason: one line.
type putGroup struct {
	module, version, failed string
	pkg                     string // the module's package, as apt-plan saw it
	why                     state.KeepWhy
	unsupported             bool
	notBuilt                string // why the failed version was not built, when it was not tried
	// warning: the failure was a W: line (a foreign or unchanged module,
	// a kernel's rebuild): putting the old build back does not make it
	// an error.
	warning bool
}

// sayPutBack says what was put back, one line per putGroup, in order.
func (k *Keeper) sayPutBack(put []state.KeptBuild, results *state.Results) {
	var order []putGroup
	kernels := map[putGroup][]string{}
	logs := map[putGroup][]string{}
	for _, b := range put {
		g := putGroup{module: b.Module, version: b.Version, failed: b.Failed, why: b.Why, pkg: b.Package}
		if results != nil && b.Failed != "" {
			if r, ok := results.Get(b.Kernel, b.Module); ok && r.Version == b.Failed {
				switch {
				case r.Outcome == state.Unsupported:
					g.unsupported = true
				case r.Outcome == state.Skipped && !r.Missing():
					// Not tried (no headers): nothing failed.
					g.notBuilt = r.Reason
				case r.Severity == state.SevWarning:
					g.warning = true
				}
			}
		}
		if _, ok := kernels[g]; !ok {
			order = append(order, g)
		}
		kernels[g] = append(kernels[g], report.Name(b.Kernel))
		if b.FailedLog != "" {
			logs[g] = append(logs[g], report.Text(b.FailedLog))
		}
	}
	for _, g := range order {
		ks := kernels[g]
		kept := report.MV(g.module, g.version)
		failed := report.MV(g.module, g.failed)
		them := "it"
		if len(ks) > 1 {
			them = "them"
		}
		logRef := ""
		switch n := len(logs[g]); {
		case n == 1:
			logRef = " (log: " + logs[g][0] + ")"
		case n > 1:
			logRef = " (logs: " + strings.Join(logs[g], ", ") + ")"
		}
		retry := "; retry once the cause is fixed: dkms-guard rebuild --module " + report.Name(g.module)
		on := strings.Join(ks, ", ")
		failure := k.Report.Errorf
		if g.warning {
			failure = k.Report.Warnf
		}
		if g.why == state.KeptForKernel {
			after := " after its kernel was reinstalled"
			if len(ks) > 1 {
				after = " after their kernels were reinstalled"
			}
			switch {
			case g.notBuilt != "":
				k.Report.Warnf("%s was not built for %s%s: %s; put back the build of %s from before", failed, on, after, report.Text(g.notBuilt), kept)
			case g.unsupported:
				k.Report.Warnf("%s does not support %s%s; put back the build of %s from before", failed, on, after, kept)
			// The same version put back is installed: rebuild leaves it
			// be, so no retry is offered that would do nothing.
			case g.failed == g.version:
				failure("the rebuild of %s failed for %s%s%s; put back the build from before, which fits the reinstalled kernel", kept, on, after, logRef)
			case g.failed != "":
				failure("%s failed for %s%s%s; put back the build of %s from before%s", failed, on, after, logRef, kept, retry)
			default:
				// Nothing failed (no headers, autoinstall off): the kernel
				// has its module back, checked to fit.
				k.Report.Warnf("%s was not rebuilt for %s%s; put back the build from before, which fits the reinstalled kernel", kept, on, after)
			}
			continue
		}
		switch {
		case g.notBuilt != "":
			k.Report.Warnf("%s was not built for %s: %s; kept %s for %s", failed, on, report.Text(g.notBuilt), kept, them)
		case g.unsupported:
			k.Report.Warnf("%s does not support %s; kept %s for %s", failed, on, kept, them)
		case g.failed == g.version:
			// A new package revision of the same module version: the build
			// from before is that version too, which rebuild leaves be.
			k.Report.Errorf("%s failed for %s%s; kept its build from before the upgrade for %s, which stays until a newer version of %s installs", failed, on, logRef, them, report.Name(g.module))
		case g.failed != "":
			failure("%s failed for %s%s; kept %s for %s%s", failed, on, logRef, kept, them, retry)
		default:
			// No newer version in dkms's tree (the package's postinst
			// failed before dkms add): nothing for rebuild to try.
			since := "its package changed"
			if g.pkg != "" {
				since = "its package " + report.Name(g.pkg) + " changed"
			}
			k.Report.Errorf("no version of %s is installed for %s since %s; kept %s for %s until a newer version installs", report.Name(g.module), on, since, kept, them)
		}
	}
}

// dropGroup is the kept builds of one module version dropped for one
// reason: one line.
type dropGroup struct {
	module, version string
	why             dropWhy
	by              string
	failed          string // dropReleased: the version it stands in for
}

// sayDropped says which kept builds that were put back are dropped, and
// why; the others nobody saw.
func (k *Keeper) sayDropped(drops []dropping) {
	var order []dropGroup
	kernels := map[dropGroup][]string{}
	ownsSource := map[state.MV]bool{}
	for _, d := range drops {
		if d.b.PutBack.IsZero() || d.why == dropBroken || d.why == dropRestored {
			continue
		}
		if d.why == dropReleased && d.b.Why == state.KeptForKernel {
			// The build dkms had before the kernel's reinstall, its
			// source untouched: nothing of dkms-guard's making is left.
			continue
		}
		g := dropGroup{module: d.b.Module, version: d.b.Version, why: d.why, by: d.by}
		if d.why == dropReleased {
			g.failed = d.b.Failed
		}
		if _, ok := kernels[g]; !ok {
			order = append(order, g)
		}
		kernels[g] = append(kernels[g], report.Name(d.b.Kernel))
		ownsSource[d.b.MV()] = ownsSource[d.b.MV()] || d.b.OwnsSource
	}
	for _, g := range order {
		mv := report.MV(g.module, g.version)
		on := strings.Join(kernels[g], ", ")
		var why string
		switch g.why {
		case dropReplaced:
			why = fmt.Sprintf(": %s is installed for %s", report.MV(g.module, g.by), on)
		case dropKernelGone:
			why = " for " + on + ": the kernel is removed"
		case dropRemoved:
			why = fmt.Sprintf(" for %s: its package %s was removed", on, report.Name(g.by))
		case dropUntracked:
			why = " for " + on + ": it was removed from dkms's tree"
		case dropReleased:
			instead := "a newer version that did not install"
			if g.failed != "" && g.failed != g.version {
				instead = report.MV(g.module, g.failed) + ", which did not install"
			}
			remove := fmt.Sprintf("dkms remove -m %s -v %s --all", report.Name(g.module), report.Name(g.version))
			if ownsSource[state.MV{Module: g.module, Version: g.version}] {
				remove += "; rm -rf " + report.Text(k.Paths.Rel(k.sourceDir(g.module, g.version)))
			}
			k.Report.Notef("left %s installed for %s in place of %s: dkms-guard is removed and no longer keeps it; to remove it: %s", mv, on, instead, remove)
			continue
		default:
			why = " for " + on
		}
		k.Report.Notef("dropped the kept build %s%s", mv, why)
	}
}
