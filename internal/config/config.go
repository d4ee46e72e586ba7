// Package config reads the administrator's settings for dkms-guard from
// /etc/default/dkms-guard, the Debian place for a tool's defaults (a
// conffile, sourced-shell syntax). dkms-guard never runs the file: it
// reads plain assignments with shellconf.
//
// Policy: a setting dkms-guard cannot read for certain, or one with a bad
// value, is one W: line and the default; a missing file is the defaults.
// dkms-guard runs inside dpkg, where a bad setting must never fail a
// package.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// Warner receives the W: lines about the file.
type Warner interface {
	Warnf(format string, args ...any)
}

// Settings are the administrator's choices.
type Settings struct {
	// Critical lists DKMS modules (or kernel modules they build) the
	// machine cannot boot without, beyond those dkms-guard finds itself.
	Critical []string
	// NotCritical lists modules never to treat as boot-critical.
	NotCritical []string
	// ManageBoot keeps the default boot entry on the newest kernel that
	// has every boot-critical module (MANAGE_BOOT_ENTRY, default yes).
	ManageBoot bool
	// Jobs is how many modules build at once (JOBS; 0, the default, is
	// "auto": as many as CPUs, at most four).
	Jobs int
	// KeepFor is which modules keep an older kernel the default boot
	// entry (KEEP_KERNEL_FOR).
	KeepFor KeepFor
	// MetricsDir is node_exporter's textfile directory (METRICS_DIR), an
	// absolute path; "" writes no metrics.
	MetricsDir string
	// KeepBuilds keeps a module's last working build until its
	// replacement is installed (KEEP_WORKING_BUILDS, default yes).
	KeepBuilds bool
}

// KeepFor is which DKMS modules, lacking in the newest kernel, keep an
// older kernel the default boot entry. The zero value is the default.
type KeepFor int

const (
	// KeepInUse: boot-critical modules and modules in use (loaded now or
	// at boot), issue 15: never quieter than stock dkms.
	KeepInUse KeepFor = iota
	// KeepBootCritical: only the modules the machine cannot boot without.
	KeepBootCritical
	// KeepNothing: the newest kernel always becomes the default.
	KeepNothing
)

// String is the setting's value, as the administrator writes it.
func (k KeepFor) String() string {
	switch k {
	case KeepInUse:
		return "in-use"
	case KeepBootCritical:
		return "boot-critical"
	case KeepNothing:
		return "nothing"
	}
	return fmt.Sprintf("BUG: KeepFor %d", int(k))
}

// MarshalText makes the setting its value in JSON (status --json).
func (k KeepFor) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ParseKeepFor reads a KEEP_KERNEL_FOR value; empty is the default.
func ParseKeepFor(val string) (KeepFor, error) {
	switch strings.ToLower(strings.TrimSpace(val)) {
	case "", "in-use":
		return KeepInUse, nil
	case "boot-critical":
		return KeepBootCritical, nil
	case "nothing":
		return KeepNothing, nil
	}
	return KeepInUse, fmt.Errorf("%q is not in-use, boot-critical or nothing", val)
}

// DefaultMetricsDir is where Debian's prometheus-node-exporter reads
// textfiles (its --collector.textfile.directory).
const DefaultMetricsDir = "/var/lib/prometheus/node-exporter"

// MaxJobs bounds JOBS and --jobs.
const MaxJobs = 64

// ParseJobs reads a JOBS or --jobs value: "auto" (or empty) is 0, else a
// number from 1 to MaxJobs.
func ParseJobs(val string) (int, error) {
	val = strings.TrimSpace(val)
	if val == "" || strings.EqualFold(val, "auto") {
		return 0, nil
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 || n > MaxJobs {
		return 0, fmt.Errorf("%q is not auto or a number of builds from 1 to %d", val, MaxJobs)
	}
	return n, nil
}

// Defaults are the settings without a file.
func Defaults() Settings {
	return Settings{ManageBoot: true, KeepBuilds: true, MetricsDir: DefaultMetricsDir}
}

// maxSize bounds the file: a few lines of settings.
const maxSize = 64 << 10

// Load reads the settings below the root.
func Load(p paths.Paths, warn Warner) Settings {
	s := Defaults()
	name := p.Defaults()
	data, err := file.ReadRegular(name, maxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return s
	}
	if err != nil {
		warn.Warnf("ignored %s: %v; using the defaults", p.Rel(name), err)
		return s
	}
	v, err := shellconf.Parse(bytes.NewReader(data), p.Rel(name))
	if err != nil {
		warn.Warnf("ignored %s: %v; using the defaults", p.Rel(name), err)
		return s
	}
	get := func(key string) (string, bool) {
		if !v.Known(key) {
			warn.Warnf("ignored %s in %s: it %s; using the default", key, p.Rel(name), v.Why(key))
			return "", false
		}
		return v.Get(key), true
	}
	if val, ok := get("CRITICAL_MODULES"); ok {
		s.Critical = strings.Fields(val)
	}
	if val, ok := get("NOT_CRITICAL_MODULES"); ok {
		s.NotCritical = strings.Fields(val)
	}
	if val, ok := get("JOBS"); ok {
		n, err := ParseJobs(val)
		if err != nil {
			warn.Warnf("ignored JOBS in %s: %v; using auto", p.Rel(name), err)
		}
		s.Jobs = n
	}
	if val, ok := get("KEEP_KERNEL_FOR"); ok {
		k, err := ParseKeepFor(val)
		if err != nil {
			warn.Warnf("ignored KEEP_KERNEL_FOR in %s: %v; using in-use", p.Rel(name), err)
		}
		s.KeepFor = k
	}
	// Unset is the default; set but empty turns the metrics off.
	if val, ok := get("METRICS_DIR"); ok && len(v.Elements("METRICS_DIR")) > 0 {
		s.MetricsDir = metricsDir(val, func(why string) {
			warn.Warnf("ignored METRICS_DIR=%q in %s: %s; using %s", val, p.Rel(name), why, DefaultMetricsDir)
		})
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"MANAGE_BOOT_ENTRY", &s.ManageBoot}, {"KEEP_WORKING_BUILDS", &s.KeepBuilds}} {
		val, ok := get(b.key)
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(val)) {
		case "", "yes", "true", "1":
		case "no", "false", "0":
			*b.to = false
		default:
			warn.Warnf("ignored %s=%q in %s: it takes yes or no; using yes", b.key, val, p.Rel(name))
		}
	}
	return s
}

// metricsDir reads METRICS_DIR: empty for no metrics, else an absolute
// path (a relative one would depend on the hook's working directory).
func metricsDir(val string, bad func(why string)) string {
	val = strings.TrimSpace(val)
	switch {
	case val == "":
		return ""
	case !filepath.IsAbs(val):
		bad("it must be an absolute path, or empty for no metrics")
		return DefaultMetricsDir
	}
	return filepath.Clean(val)
}
