package metrics_test

import (
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/metrics"
	"github.com/dkms-guard/dkms-guard/internal/results"
)

// The HELP of dkms_guard_module_missing lists the reason codes by hand
// (metrics sits below results and cannot import them): it names every
// code results defines, so a new code cannot leave it stale.
func TestHelpNamesEveryReason(t *testing.T) {
	var help string
	for _, l := range strings.Split(string(metrics.Snapshot{}.Text()), "\n") {
		if strings.HasPrefix(l, "# HELP dkms_guard_module_missing ") {
			help = l
		}
	}
	if help == "" {
		t.Fatal("no HELP line for dkms_guard_module_missing")
	}
	for _, r := range results.Reasons {
		if !strings.Contains(help, " "+string(r)+",") && !strings.Contains(help, " "+string(r)+")") {
			t.Errorf("HELP does not name reason %s: %s", r, help)
		}
	}
}
