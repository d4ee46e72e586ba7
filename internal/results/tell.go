package results

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/metrics"
	"github.com/dkms-guard/dkms-guard/internal/notifier"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Tell refreshes every place people look for what a kernel lacks, or
// runs as an older build kept in place of a newer version, after the boot
// entry is settled (boot: the lines about the next boot; exclude: a kernel
// being removed): the notice (which the login script
// update-motd.d/95-dkms-guard shows), update-notifier's hook, and the
// metrics. Each says something only while a kernel lacks a module or runs
// a kept build (or notes, Secure Boot's, need saying: the notice and
// update-notifier), and a channel's trouble is one W: line: telling never
// fails a hook.
func (r *Recorder) Tell(view []Kernel, boot []string, exclude string, notes ...string) {
	if err := r.WriteNotice(view, boot, notes...); err != nil {
		r.Report.Warnf("%v", err)
	}
	head := Headline(view, boot, r.Paths.Rel(r.Paths.Notice()), notes...)
	if err := notifier.Write(r.Paths, head, r.now()); err != nil {
		r.Report.Warnf("%v", err)
	}
	if dir := r.metricsDir(); dir != "" {
		if err := r.writeMetrics(dir, view, exclude); err != nil {
			r.Report.Warnf("%v", err)
		}
	}
}

func (r *Recorder) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// RefreshMetrics rewrites the metrics from the results on record, for
// an apt run that touched no DKMS module: the last run's time and outcome
// move on every run. Where METRICS_DIR does not exist it costs one stat.
func (r *Recorder) RefreshMetrics(all *state.Results) {
	dir := r.metricsDir()
	if dir == "" {
		return
	}
	view, err := r.View(all)
	if err != nil {
		r.Report.Warnf("writing metrics: %v", err)
		return
	}
	if err := r.writeMetrics(dir, view, ""); err != nil {
		r.Report.Warnf("%v", err)
	}
}

// metricsDir is METRICS_DIR below the root where it exists, else "".
func (r *Recorder) metricsDir() string {
	s := config.Defaults()
	if r.Settings != nil {
		s = r.Settings()
	}
	if s.MetricsDir == "" {
		return ""
	}
	if dir := r.Paths.Under(s.MetricsDir); isDir(dir) {
		return dir
	}
	return "" // no node_exporter here: not even boot.json is read
}

// writeMetrics replaces the metrics file in dir, METRICS_DIR as
// metricsDir found it.
func (r *Recorder) writeMetrics(dir string, view []Kernel, exclude string) error {
	snap := metrics.Snapshot{LastRun: r.now().UTC(), Success: true}
	for _, k := range view {
		if k.Kernel == exclude {
			continue
		}
		if k.Bootable && snap.Newest == "" {
			snap.Newest = k.Kernel
		}
		for _, m := range k.Missing {
			snap.Missing = append(snap.Missing, metrics.Missing{Kernel: k.Kernel, Module: m.Module, Version: m.Version, Reason: string(m.Reason)})
			snap.Success = snap.Success && !m.Failed
		}
		for _, kp := range k.Kept {
			snap.Kept = append(snap.Kept, metrics.Kept{Kernel: k.Kernel, Module: kp.Module, Version: kp.Version, Failed: kp.Failed})
			// A build put back hides the failure from the kernel, not
			// from the fleet: the newest version failed (the E: line said
			// so) and stays failed until a rebuild or a fixed package
			// replaces it. A version that does not support the kernel
			// failed nothing: retrying will not change it.
			snap.Success = snap.Success && kp.Reason == ReasonUnsupported
		}
	}
	pin, err := r.pinned()
	if err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	snap.Pinned = pin
	return metrics.Write(dir, snap)
}

// pinned is the kernel boot.json records dkms-guard pinned, "" when none.
// It reads without the lock: state files are replaced whole.
func (r *Recorder) pinned() (string, error) {
	st, err := state.OpenReadOnly(r.Paths, r.Report)
	if errors.Is(err, state.ErrNoState) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer st.Close()
	var b state.Boot
	if _, err := st.Load(state.BootFile, &b); err != nil {
		return "", err
	}
	return b.Pinned, nil
}

func isDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}
