// Package metrics writes dkms-guard's Prometheus textfile for
// node_exporter's textfile collector: which kernel lacks which DKMS module
// and why, which runs an older build kept in place of a newer version,
// whether the boot entry is pinned, and when dkms-guard last looked and
// what it found.
//
// Policy (the Prometheus exposition format and naming conventions):
//   - One file, dkms-guard.prom, replaced atomically: node_exporter reads
//     only names ending in .prom, and the temp file's name (renameio's
//     ".dkms-guard.prom" plus digits) never does, so a scrape never sees
//     half a file.
//   - Written only where the directory exists (the exporter's package made
//     it): dkms-guard never creates it. Mode 0644: the exporter runs as
//     the prometheus user.
//   - Label values are names as they are, escaped as the format says; a
//     name that is not UTF-8 is Go-quoted. Two series never share their
//     labels: node_exporter drops a file that repeats one.
//   - The series of a module go away with their cause; the last-run series
//     are always there.
package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dkms-guard/dkms-guard/internal/file"
)

// FileName is dkms-guard's file in the textfile directory.
const FileName = "dkms-guard.prom"

// Missing is one module a kernel lacks: one dkms_guard_module_missing series.
type Missing struct {
	Kernel, Module, Version string
	Reason                  string // a code from a fixed set (results.Reason)
}

// Kept is an older build put back for a kernel because the version that
// was to replace it (Failed) failed there or does not support it: one
// dkms_guard_module_kept series.
type Kept struct {
	Kernel, Module, Version, Failed string
}

// Snapshot is what the file says.
type Snapshot struct {
	Missing []Missing
	Kept    []Kept
	// Pinned is the kernel dkms-guard keeps the default boot entry ("" when
	// it keeps none); Newest the newest bootable kernel, which it keeps
	// the default from.
	Pinned, Newest string
	// LastRun is when dkms-guard last recorded the modules and settled the
	// boot entry; Success is false when a module's newest version had then
	// failed for a kernel: the kernel lacked it (what makes status exit 1)
	// or ran an older build kept in its place.
	LastRun time.Time
	Success bool
}

// Text is the snapshot in the Prometheus text exposition format.
func (s Snapshot) Text() []byte {
	var b bytes.Buffer
	family(&b, "dkms_guard_module_missing",
		"A DKMS module a kernel lacks, and why (reason: build_failed, timed_out, depmod_failed, depends_failed, no_headers, not_built, unknown).")
	seen := map[string]bool{}
	for _, m := range s.Missing {
		line := sample("dkms_guard_module_missing", []string{"kernel", m.Kernel, "module", m.Module, "version", m.Version, "reason", m.Reason}, "1")
		if !seen[line] {
			seen[line] = true
			b.WriteString(line)
		}
	}
	family(&b, "dkms_guard_module_kept",
		"A build of a DKMS module (version) that dkms-guard put back for a kernel because the version that was to replace it (failed_version: a newer one, or the same one when the kernel's own rebuild failed) failed there, does not support it or was not built.")
	for _, k := range s.Kept {
		line := sample("dkms_guard_module_kept", []string{"kernel", k.Kernel, "module", k.Module, "version", k.Version, "failed_version", k.Failed}, "1")
		if !seen[line] {
			seen[line] = true
			b.WriteString(line)
		}
	}
	family(&b, "dkms_guard_boot_pinned", "Whether dkms-guard keeps an older kernel the default boot entry because the newest lacks a module it needs.")
	b.WriteString(sample("dkms_guard_boot_pinned", nil, bit(s.Pinned != "")))
	family(&b, "dkms_guard_boot_pin_info", "The kernel dkms-guard keeps the default boot entry (kernel) instead of the newest one (newest), while it does.")
	if s.Pinned != "" {
		b.WriteString(sample("dkms_guard_boot_pin_info", []string{"kernel", s.Pinned, "newest", s.Newest}, "1"))
	}
	family(&b, "dkms_guard_last_run_timestamp_seconds", "When dkms-guard last ran: an apt run (post-invoke), a kernel hook, rebuild or unpin.")
	b.WriteString(sample("dkms_guard_last_run_timestamp_seconds", nil, strconv.FormatInt(s.LastRun.Unix(), 10)))
	family(&b, "dkms_guard_last_run_success", "1 when, after dkms-guard's last run, no DKMS module's newest version had failed for a kernel; 0 when one had: the kernel lacked it (dkms-guard status exits 1) or ran an older build kept in its place (dkms_guard_module_kept).")
	b.WriteString(sample("dkms_guard_last_run_success", nil, bit(s.Success)))
	return b.Bytes()
}

func family(b *bytes.Buffer, name, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
}

// sample is one line: name{label="value",...} value. labels alternates
// names and values.
func sample(name string, labels []string, value string) string {
	var b strings.Builder
	b.WriteString(name)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=\"%s\"", labels[i], escape(labels[i+1]))
	}
	if len(labels) > 0 {
		b.WriteByte('}')
	}
	b.WriteString(" " + value + "\n")
	return b.String()
}

// escape makes a label value: backslash, double quote and line feed
// escaped (the exposition format), and a value that is not UTF-8 (dkms
// names are bytes) Go-quoted, which the format can carry.
func escape(v string) string {
	if !utf8.ValidString(v) {
		v = strconv.Quote(v)
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Write replaces dir's dkms-guard.prom with s, mode 0644, where dir is a
// directory: without it nothing is written and there is no error.
func Write(dir string, s Snapshot) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	if err := file.WriteAtomicFile(filepath.Join(dir, FileName), s.Text(), 0o644); err != nil {
		return fmt.Errorf("writing metrics %s/%s: %w", dir, FileName, err)
	}
	return nil
}
