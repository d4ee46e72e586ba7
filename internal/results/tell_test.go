package results

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/metrics"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
)

// A channel that cannot be written is one W: line; the others are still
// written.
func TestTellTroubleIsAWarning(t *testing.T) {
	p := paths.New(t.TempDir())
	dir := p.Under(config.DefaultMetricsDir)
	// A directory where the metrics file goes: the rename fails.
	must(t, os.MkdirAll(filepath.Join(dir, metrics.FileName), 0o755))
	must(t, os.MkdirAll(p.UpdateNotifierHooks(), 0o755))
	var out bytes.Buffer
	r := &Recorder{Paths: p, Report: report.New(&out), Now: func() time.Time { return time.Unix(1, 0) }}
	r.Tell([]Kernel{failed("k2", "wifi"), failed("k1")}, nil, "")
	if !paths.Exists(p.Notice()) || !paths.Exists(filepath.Join(p.UpdateNotifierHooks(), "dkms-guard-module-missing")) {
		t.Error("the notice or update-notifier's hook was not written")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "W: dkms-guard: writing metrics ") {
		t.Errorf("output:\n%s", out.String())
	}
}
