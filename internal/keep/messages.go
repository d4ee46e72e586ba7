package keep

// What keeping says (the policy is report's):
//
//   - E: one line per module and version put back: which version failed
//     (and its logs), which was kept, for which kernels, how to retry. A
//     build that cannot be put back, or does not fit its reinstalled
//     kernel, is an E: line of its own.
//   - W: the new version does not support those kernels (dkms exit 77):
//     nothing to retry, the machine works with the kept build; a build
//     that cannot be kept before the upgrade.
//   - N: a kept build that was put back is dropped (status showed it):
//     why, for which kernels. Dropping an archive nobody saw is silent.

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
	why                     state.KeepWhy
	unsupported             bool
}

// sayPutBack says what was put back, one line per putGroup, in order.
func (k *Keeper) sayPutBack(put []state.KeptBuild, results *state.Results) {
	var order []putGroup
	kernels := map[putGroup][]string{}
	logs := map[putGroup][]string{}
	for _, b := range put {
		g := putGroup{module: b.Module, version: b.Version, failed: b.Failed, why: b.Why}
		if results != nil && b.Failed != "" {
			if r, ok := results.Get(b.Kernel, b.Module); ok && r.Version == b.Failed && r.Outcome == state.Unsupported {
				g.unsupported = true
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
		retry := ": retry with dkms-guard rebuild --module " + report.Name(g.module)
		on := strings.Join(ks, ", ")
		if g.why == state.KeptForKernel {
			after := " after its kernel was reinstalled"
			if len(ks) > 1 {
				after = " after their kernels were reinstalled"
			}
			switch {
			case g.unsupported:
				k.Report.Warnf("%s does not support %s%s; put back the build of %s from before", failed, on, after, kept)
			// The same version put back is installed: rebuild leaves it
			// be, so no retry is offered that would do nothing.
			case g.failed == g.version:
				k.Report.Errorf("the rebuild of %s failed for %s%s%s; put back the build from before, which stays until a newer version of %s installs", kept, on, after, logRef, report.Name(g.module))
			case g.failed != "":
				k.Report.Errorf("%s failed for %s%s%s; put back the build of %s from before%s", failed, on, after, logRef, kept, retry)
			default:
				k.Report.Errorf("%s was not rebuilt for %s%s; put back the build from before, which stays until a newer version of %s installs", kept, on, after, report.Name(g.module))
			}
			continue
		}
		switch {
		case g.unsupported:
			k.Report.Warnf("%s does not support %s; kept %s for %s", failed, on, kept, them)
		case g.failed == g.version:
			// A new package revision of the same module version: the build
			// from before is that version too, which rebuild leaves be.
			k.Report.Errorf("%s failed for %s%s; kept its build from before the upgrade for %s, which stays until a newer version of %s installs", failed, on, logRef, them, report.Name(g.module))
		case g.failed != "":
			k.Report.Errorf("%s failed for %s%s; kept %s for %s%s", failed, on, logRef, kept, them, retry)
		default:
			// No newer version is in dkms's tree: nothing for rebuild to try.
			k.Report.Errorf("no version of %s is installed for %s since the upgrade of %s; kept %s for %s until a newer version installs", report.Name(g.module), on, kept, kept, them)
		}
	}
}

// dropGroup is the kept builds of one module version dropped for one
// reason: one line.
type dropGroup struct {
	module, version string
	why             dropWhy
	by              string
}

// sayDropped says which kept builds that were put back are dropped, and
// why; the others nobody saw.
func (k *Keeper) sayDropped(drops []dropping) {
	var order []dropGroup
	kernels := map[dropGroup][]string{}
	for _, d := range drops {
		if d.b.PutBack.IsZero() || d.why == dropBroken {
			continue
		}
		g := dropGroup{module: d.b.Module, version: d.b.Version, why: d.why, by: d.by}
		if _, ok := kernels[g]; !ok {
			order = append(order, g)
		}
		kernels[g] = append(kernels[g], report.Name(d.b.Kernel))
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
			k.Report.Notef("left %s installed for %s, in place of a newer version that did not install: dkms-guard is removed and no longer keeps it; to remove it: dkms remove -m %s -v %s --all; rm -rf %s",
				mv, on, report.Name(g.module), report.Name(g.version), report.Text(k.Paths.Rel(k.sourceDir(g.module, g.version))))
			continue
		default:
			why = " for " + on
		}
		k.Report.Notef("dropped the kept build %s%s", mv, why)
	}
}
