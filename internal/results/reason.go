package results

import "github.com/dkms-guard/dkms-guard/internal/state"

// Reason is why a kernel lacks a module, as a code from a fixed set for
// programs (status --json, the metrics' reason label); Missing.Why is the
// sentence for people. New codes may be added; a code never changes its
// meaning.
type Reason string

const (
	ReasonBuildFailed   Reason = "build_failed"   // dkms failed to build or install it
	ReasonTimedOut      Reason = "timed_out"      // its build ran past --timeout and was killed
	ReasonDepmodFailed  Reason = "depmod_failed"  // installed, but depmod failed after it
	ReasonDependsFailed Reason = "depends_failed" // not built: its BUILD_DEPENDS failed, are missing or form a cycle
	ReasonNoHeaders     Reason = "no_headers"     // not built: the kernel's headers are not installed
	ReasonNotBuilt      Reason = "not_built"      // not built yet: never tried, or the build was interrupted
	ReasonUnknown       Reason = "unknown"        // dkms-guard cannot tell whether the kernel needs it (dkms.conf unreadable)
)

// ReasonUnsupported is a kept build's reason only (Kept.Reason): the
// newest version does not support the kernel, so the older one was put
// back. A module a kernel does not support is never missing.
const ReasonUnsupported Reason = "unsupported"

// Reasons lists every code a missing module can have, for the
// documentation and its tests; a kept build's is one of them or
// ReasonUnsupported.
var Reasons = []Reason{ReasonBuildFailed, ReasonTimedOut, ReasonDepmodFailed, ReasonDependsFailed, ReasonNoHeaders, ReasonNotBuilt, ReasonUnknown}

// reasonOf is the code of a result that leaves a kernel without its
// module; headers tells whether that kernel has its headers. It reads the
// result's typed fields only, never its text.
func reasonOf(r state.Result, headers bool) Reason {
	switch {
	case r.Outcome == state.Failed && r.Cause == state.CauseTimedOut:
		return ReasonTimedOut
	case r.Outcome == state.Failed && r.Cause == state.CauseDepmod:
		return ReasonDepmodFailed
	case r.Outcome == state.Failed:
		return ReasonBuildFailed
	case r.Cause == state.CauseBuildDepends:
		return ReasonDependsFailed
	case !headers:
		return ReasonNoHeaders
	}
	return ReasonNotBuilt
}
