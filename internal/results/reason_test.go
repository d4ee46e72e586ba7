package results

import (
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Each recorded result that leaves a kernel without its module gets its
// code from the result's outcome and cause, never from its text.
func TestReasonOf(t *testing.T) {
	for _, tc := range []struct {
		r       state.Result
		headers bool
		want    Reason
	}{
		{state.Result{Outcome: state.Failed, Reason: "exit 10"}, true, ReasonBuildFailed},
		{state.Result{Outcome: state.Failed, Cause: state.CauseTimedOut, Reason: "exit 10"}, true, ReasonTimedOut},
		{state.Result{Outcome: state.Failed, Cause: state.CauseDepmod}, true, ReasonDepmodFailed},
		{state.Result{Outcome: state.Skipped, Cause: state.CauseBuildDepends}, true, ReasonDependsFailed},
		{state.Result{Outcome: state.Skipped, Reason: "no headers for this kernel are installed"}, false, ReasonNoHeaders},
		{state.Result{Outcome: state.Skipped, Reason: "dkms-guard was interrupted before building it"}, true, ReasonNotBuilt},
		// A failure that says "timed out" in its text but was not killed by
		// dkms-guard's timeout (dkms's own message) is a failed build.
		{state.Result{Outcome: state.Failed, Reason: "timed out after 1s"}, true, ReasonBuildFailed},
	} {
		if got := reasonOf(tc.r, tc.headers); got != tc.want {
			t.Errorf("reasonOf(%+v, %v) = %s, want %s", tc.r, tc.headers, got, tc.want)
		}
	}
}
