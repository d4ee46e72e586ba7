package config

import (
	"strings"
	"testing"
)

// METRICS_DIR: the default without it, empty for none, an absolute path
// cleaned; a relative one is a warning and the default.
func TestMetricsDir(t *testing.T) {
	for content, want := range map[string]string{
		"":                              DefaultMetricsDir,
		"JOBS=1\n":                      DefaultMetricsDir,
		"METRICS_DIR=\"\"\n":            "",
		"METRICS_DIR=/srv/textfiles/\n": "/srv/textfiles",
		"METRICS_DIR=\"/var/lib/node_exporter/textfile_collector\"\n": "/var/lib/node_exporter/textfile_collector",
	} {
		s, w := load(t, content)
		if s.MetricsDir != want || len(w) != 0 {
			t.Errorf("%q: MetricsDir %q, warnings %q; want %q", content, s.MetricsDir, w, want)
		}
	}
	s, w := load(t, "METRICS_DIR=textfiles\n")
	if s.MetricsDir != DefaultMetricsDir || len(w) != 1 || !strings.Contains(w[0], `ignored METRICS_DIR="textfiles" in /etc/default/dkms-guard: it must be an absolute path`) {
		t.Errorf("relative: %q %q", s.MetricsDir, w)
	}
}
