// Package kernelhook builds DKMS modules for a kernel the way dkms's
// autoinstall would, but one module at a time, so that one module's failure
// is one module's failure and never the kernel package's.
//
// NOTE(dkms-guard): stock `dkms autoinstall` (dkms 3.0.10) exits 11 when any
// module fails, which makes run-parts, and with it the kernel or header
// package's postinst, fail. Here every outcome is recorded and reported and
// the caller always gets on with the upgrade.
package kernelhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Installer is the one dkms operation the engine needs.
type Installer interface {
	Install(ctx context.Context, module, version, kernel string, out io.Writer) error
}

// Engine builds and installs modules for kernels and reports each outcome.
type Engine struct {
	Paths  paths.Paths
	DKMS   Installer
	Report *report.Reporter
	Arch   string // as dkms's $arch: uname -m
	RunID  string // the apt run this happens in, "" outside apt
	By     string // autoinstall, post-invoke, rebuild
	Now    func() time.Time
	// Severity says how a failure of module is reported; nil means warning.
	Severity func(module string) state.Severity
	// Owner names the package shipping module, for the record; may be nil.
	Owner func(module string) string
}

// HasHeaders is dkms_autoinstaller's _check_kernel_dir: headers are there
// when /lib/modules/K/build/include exists.
func (e *Engine) HasHeaders(kernel string) bool {
	_, err := os.Stat(filepath.Join(e.Paths.KernelHeaders(kernel), "include"))
	return err == nil
}

// Autoinstall chooses what dkms's autoinstall would for kernel: for every
// module with no version installed for it, the newest version whose
// dkms.conf sets AUTOINSTALL; then builds them.
func (e *Engine) Autoinstall(ctx context.Context, tree dkms.Tree, kernel string) []state.Result {
	var jobs []dkms.Module
	for _, name := range tree.Names() {
		if _, ok := tree.InstalledFor(name, kernel); ok {
			continue
		}
		var pick *dkms.Module
		for _, m := range tree.Versions(name) {
			c, err := dkms.ReadConf(m.ConfFile(e.Paths.DKMSTree()), e.Paths.DKMSConfDir(), m.Name, m.Version, kernel, e.Arch)
			if err != nil || !c.Autoinstall() {
				// dkms dies on an unreadable dkms.conf here; skipping the
				// version and saying so is the module-by-module equivalent.
				if err != nil {
					e.Report.Warnf("%s: not built for %s: %v", report.MV(m.Name, m.Version), report.Name(kernel), err)
				}
				continue
			}
			m := m
			pick = &m // versions come oldest first: the last one wins
		}
		if pick != nil {
			jobs = append(jobs, *pick)
		}
	}
	return e.Build(ctx, tree, kernel, jobs)
}

// Build installs jobs for kernel, in BUILD_DEPENDS order, one at a time.
func (e *Engine) Build(ctx context.Context, tree dkms.Tree, kernel string, jobs []dkms.Module) []state.Result {
	installed := map[string]bool{}
	for _, name := range tree.Names() {
		if _, ok := tree.InstalledFor(name, kernel); ok {
			installed[name] = true
		}
	}
	confs := map[string]*dkms.Conf{}
	pending := map[string]bool{}
	for _, j := range jobs {
		c, err := dkms.ReadConf(j.ConfFile(e.Paths.DKMSTree()), e.Paths.DKMSConfDir(), j.Name, j.Version, kernel, e.Arch)
		if err == nil {
			confs[j.Name] = c
		}
		pending[j.Name] = true
	}
	bad := map[string]bool{}
	var results []state.Result
	remaining := append([]dkms.Module(nil), jobs...)
	for len(remaining) > 0 {
		var next []dkms.Module
		progress := false
		for _, j := range remaining {
			var waiting, failedDeps, missing []string
			for _, d := range confs[j.Name].BuildDependsOrNil() {
				switch {
				case installed[d]:
				case bad[d]:
					failedDeps = append(failedDeps, d)
				case pending[d]:
					waiting = append(waiting, d)
				default:
					missing = append(missing, d)
				}
			}
			var r state.Result
			switch {
			case len(failedDeps) > 0:
				r = e.skip(j, kernel, fmt.Sprintf("its BUILD_DEPENDS %s was not installed", strings.Join(failedDeps, ", ")))
			case len(missing) > 0:
				r = e.skip(j, kernel, fmt.Sprintf("its BUILD_DEPENDS %s is not a DKMS module here", strings.Join(missing, ", ")))
			case len(waiting) > 0:
				next = append(next, j)
				continue
			default:
				r = e.install(ctx, j, kernel, confs[j.Name])
			}
			progress = true
			delete(pending, j.Name)
			if r.Outcome == state.Installed {
				installed[j.Name] = true
			} else {
				bad[j.Name] = true
			}
			results = append(results, r)
		}
		if !progress {
			sort.Slice(next, func(a, b int) bool { return next[a].Name < next[b].Name })
			for _, j := range next {
				results = append(results, e.skip(j, kernel, "its BUILD_DEPENDS form a cycle"))
			}
			break
		}
		remaining = next
	}
	return results
}

// Result is a new result of module j for kernel, owned and stamped.
func (e *Engine) Result(j dkms.Module, kernel string, o state.Outcome) state.Result {
	r := state.Result{
		Run: e.RunID, Kernel: kernel, Module: j.Name, Version: j.Version,
		Outcome: o, By: e.By, Time: e.Now().UTC(),
	}
	if e.Owner != nil {
		r.Owner = e.Owner(j.Name)
	}
	return r
}

func (e *Engine) severity(module string) state.Severity {
	if e.Severity == nil {
		return state.SevWarning
	}
	if s := e.Severity(module); s != state.SevNone {
		return s
	}
	return state.SevWarning
}

func (e *Engine) complain(sev state.Severity, format string, args ...any) {
	if sev == state.SevError {
		e.Report.Errorf(format, args...)
	} else {
		e.Report.Warnf(format, args...)
	}
}

func (e *Engine) skip(j dkms.Module, kernel, why string) state.Result {
	r := e.Result(j, kernel, state.Skipped)
	r.Reason = why
	r.Severity = e.severity(j.Name)
	e.complain(r.Severity, "%s: not built for %s: %s", report.MV(j.Name, j.Version), report.Name(kernel), why)
	return r
}

func (e *Engine) install(ctx context.Context, j dkms.Module, kernel string, c *dkms.Conf) state.Result {
	mv := report.MV(j.Name, j.Version)
	if ctx.Err() != nil {
		return e.skip(j, kernel, "dkms-guard was interrupted before building it")
	}
	if why := c.Unsupported(kernel, e.Arch, func() []byte {
		data, err := os.ReadFile(e.Paths.KernelConfig(kernel))
		if err != nil {
			return nil
		}
		return data
	}); why != "" {
		r := e.Result(j, kernel, state.Unsupported)
		r.Reason = why
		e.Report.Notef("%s: not built for %s, unsupported: %s", mv, report.Name(kernel), why)
		return r
	}
	logPath := e.Paths.BuildLog(kernel, j.Name, j.Version)
	logw, closeLog, logErr := openLog(logPath)
	if logErr != nil {
		// A full or read-only /var/log must not stop the build itself.
		e.Report.Warnf("cannot keep the build log of %s for %s: %v", mv, report.Name(kernel), logErr)
	}
	fmt.Fprintf(logw, "dkms-guard: dkms install -m %s -v %s -k %s (%s)\n", j.Name, j.Version, kernel, e.Now().UTC().Format(time.RFC3339))
	e.Report.Notef("building %s for %s", mv, report.Name(kernel))
	err := e.DKMS.Install(ctx, j.Name, j.Version, kernel, logw)

	r := e.Result(j, kernel, state.Installed)
	if logErr == nil {
		r.Log = e.Paths.Rel(logPath)
	}
	var xe *dkms.ExitError
	switch {
	case err == nil:
		e.Report.Notef("%s: installed for %s", mv, report.Name(kernel))
	case errors.As(err, &xe) && xe.Code == dkms.Unsupported:
		r.Outcome = state.Unsupported
		r.Exit = xe.Code
		r.Reason = "dkms exit 77: the module does not apply to this kernel (BUILD_EXCLUSIVE)"
		e.Report.Notef("%s: not built for %s, unsupported: %s", mv, report.Name(kernel), r.Reason)
	default:
		r.Outcome = state.Failed
		r.Severity = e.severity(j.Name)
		r.Reason = err.Error()
		if xe != nil {
			r.Exit = xe.Code
		} else if errors.Is(err, dkms.ErrNotFound) {
			r.Reason = dkms.ErrNotFound.Error()
		}
		appendDKMSLogs(logw, e.Paths.DKMSTree(), j, kernel, e.Arch)
		where := ""
		if r.Log != "" {
			where = ", see " + r.Log
		}
		e.complain(r.Severity, "%s: build failed for %s (%s)%s", mv, report.Name(kernel), r.Reason, where)
	}
	closeLog()
	return r
}

// openLog creates the build log, replacing the one of an earlier attempt.
func openLog(name string) (io.Writer, func(), error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return io.Discard, func() {}, err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, 0o644)
	if err != nil {
		return io.Discard, func() {}, err
	}
	return f, func() { f.Close() }, nil
}

// appendDKMSLogs copies dkms's own make.log into ours: dkms 3.0.x keeps it
// in M/V/build/, which the next kernel's build overwrites (newer dkms keeps
// M/V/K/A/log/make.log).
func appendDKMSLogs(w io.Writer, tree string, j dkms.Module, kernel, arch string) {
	for _, p := range []string{
		filepath.Join(tree, j.Name, j.Version, kernel, arch, "log", "make.log"),
		filepath.Join(tree, j.Name, j.Version, "build", "make.log"),
	} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		const max = 1 << 20
		if fi, err := f.Stat(); err == nil && fi.Size() > max {
			f.Seek(-max, io.SeekEnd)
		}
		fmt.Fprintf(w, "\n--- dkms-guard: copy of %s ---\n", p)
		// Hide the log file's ReadFrom: dkms may have set O_APPEND on the
		// file description we share with it, and copy_file_range(2)
		// refuses O_APPEND (EBADF) where a plain write works.
		if _, err := io.Copy(struct{ io.Writer }{w}, f); err != nil {
			fmt.Fprintf(w, "\n--- dkms-guard: copy ended early: %v ---\n", err)
		}
		f.Close()
		return
	}
}

// noFollow keeps a planted symlink in the log directory from redirecting
// a root-owned write.
const noFollow = syscall.O_NOFOLLOW
