// Package build builds and installs DKMS modules for kernels the way dkms's
// autoinstall would, but one module at a time, so that one module's failure
// is one module's failure and never the kernel package's.
//
// It owns the build lock: the only way to build is a Session, and the only
// way to get one is Builder.Begin, which takes the lock. dkms has no lock
// of its own and dkms 3.0.x builds every kernel of a module version in the
// same M/V/build directory, so two dkms-guard processes (unattended-upgrades'
// post-invoke and a rebuild in a terminal) must never build at once.
//
// NOTE(dkms-guard): stock `dkms autoinstall` (dkms 3.0.10) exits 11 when any
// module fails, which makes run-parts, and with it the kernel or header
// package's postinst, fail. Here every outcome is returned as a result and
// reported, and the caller always gets on with the upgrade.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/lock"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Tool is what the builder runs: dkms's build and install (started gets
// the process group of the run once it runs), and depmod.
type Tool interface {
	Build(ctx context.Context, module, version, kernel string, makeJobs int, out io.Writer, started func(pgid int)) error
	Install(ctx context.Context, module, version, kernel string, noDepmod bool, makeJobs int, out io.Writer, started func(pgid int)) error
	Depmod(ctx context.Context, kernel string, out io.Writer) error
}

// Builder builds modules; see Begin.
type Builder struct {
	Paths  paths.Paths
	DKMS   Tool
	Report *report.Reporter
	Arch   string // as dkms's $arch: uname -m
	Now    func() time.Time
	// LockWait bounds the wait for another dkms-guard's builds (0: as long
	// as it takes). Past it, building goes on without the lock, as stock
	// dkms always does, rather than hang a kernel package's postinst.
	LockWait time.Duration
	Tuning
	// Tune, if set, gives a session its Tuning when it begins (in place of
	// the field): the settings and the dkms script are read only when
	// something may be built, not on every apt hook.
	Tune func() Tuning
	// idle, if set (by tests), is told how many builds run each time
	// BuildAll waits for one: the schedule's decisions, as events.
	idle func(running int)
}

// Tuning is how a session builds.
type Tuning struct {
	// Parallel says how many modules build at once (see Share); the zero
	// value is one at a time.
	Parallel Parallelism
	// NoDepmod: dkms takes --no-depmod, and depmod runs once per kernel
	// after its installs instead of after each.
	NoDepmod bool
}

// Labels say on whose behalf a session builds, for the results.
type Labels struct {
	Run string // the apt run this happens in, "" outside apt
	By  string // autoinstall, post-invoke, rebuild
	// Severity says how a failure of module is reported; nil means warning.
	Severity func(module string) state.Severity
	// Owner names the package shipping module, for the record; may be nil.
	Owner func(module string) string
}

// Session is the build lock, held, with the DKMS tree as it is under it.
type Session struct {
	// Labels go into every result of the session; set them before building.
	Labels Labels
	b      *Builder
	Tuning
	store  *state.Store
	lock   noter // nil when building without it
	unlock func()
	bootID string // for the build lock's notes
	tree   dkms.Tree
	confs  map[confKey]confRead // each dkms.conf read once per session
	// standIns are the kept builds put back in place of a newer version
	// (kept.json, package keep), by module, version and kernel.
	standIns map[confKey]bool

	noteErr noteError
}

// noteError is the first note of the running builds that could not be
// written to the build lock, kept from any build's goroutine and said
// once from BuildAll's.
type noteError struct {
	mu   sync.Mutex
	err  error
	said bool
}

// noter is the held build lock, as a session notes its running builds.
type noter interface {
	Note(text string) error
}

type confKey struct{ module, version, kernel string }

type confRead struct {
	conf *dkms.Conf
	err  error
}

// conf reads m's dkms.conf (with its overrides) for kernel, once.
func (s *Session) conf(m dkms.Module, kernel string) (*dkms.Conf, error) {
	k := confKey{m.Name, m.Version, kernel}
	if r, ok := s.confs[k]; ok {
		return r.conf, r.err
	}
	c, err := s.b.conf(m, kernel)
	s.confs[k] = confRead{c, err}
	return c, err
}

// Begin takes the build lock (waiting for another dkms-guard's builds to
// finish), opens the state directory and reads the DKMS tree. A lock that
// cannot be had (interrupted, held past LockWait) or state that cannot be
// used (a read-only or full disk, an unsafe directory) is one warning
// each, and building goes on, as stock dkms always does: the modules are
// what the user needs. It fails only when the DKMS tree cannot be read.
// End must be called.
func (b *Builder) Begin(ctx context.Context) (*Session, error) {
	s := &Session{b: b, Tuning: b.Tuning, unlock: func() {}, confs: map[confKey]confRead{}, bootID: b.host().BootID()}
	if b.Tune != nil {
		s.Tuning = b.Tune()
	}
	unlock, err := lock.TakeBuild(ctx, b.Paths.RunDir(), b.LockWait, b.Report, func() {
		b.Report.Notef("waiting for another dkms-guard build to finish (%s)", b.Paths.Rel(filepath.Join(b.Paths.RunDir(), "build.lock")))
	})
	if err != nil {
		b.Report.Warnf("building without the build lock: %v", err)
	} else {
		s.lock, s.unlock = unlock, unlock.Unlock
		b.stopLeftovers(unlock.Previous(), s.bootID)
	}
	if st, err := state.Open(b.Paths, true, b.Report); err != nil {
		if !errors.Is(err, state.ErrUnusable) { // that one has said so itself
			b.Report.Warnf("building without a record: %v", err)
		}
	} else {
		s.store = st
		s.standIns = standIns(st, b.Report)
	}
	tree, err := dkms.ReadTree(b.Paths.DKMSTree())
	if err != nil {
		s.End()
		return nil, err
	}
	s.tree = tree
	return s, nil
}

// End releases the lock and the state directory.
func (s *Session) End() {
	s.unlock()
	if s.store != nil {
		s.store.Close()
	}
}

// Store is the opened state directory, nil when it is unusable (Begin has
// said so).
func (s *Session) Store() *state.Store { return s.store }

// Tree is the DKMS tree as read under the lock.
func (s *Session) Tree() dkms.Tree { return s.tree }

// Pick chooses what dkms's autoinstall would build for kernel. A version
// whose AUTOINSTALL dkms-guard cannot evaluate is picked (dkms decides by
// its exit status), with a note: never a silent skip.
func (s *Session) Pick(kernel string) []dkms.Module {
	var jobs []dkms.Module
	for _, name := range s.tree.Names() {
		if m, ok := s.tree.InstalledFor(name, kernel); ok && !s.StandsIn(m, kernel) {
			continue
		}
		var pick *dkms.Module
		var note string
		for _, m := range s.tree.Versions(name) {
			c, err := s.conf(m, kernel)
			if err != nil {
				// dkms dies on an unreadable dkms.conf here; skipping the
				// version and saying so is the module-by-module equivalent.
				s.b.Report.Warnf("%s: not built for %s: %v", report.MV(m.Name, m.Version), report.Name(kernel), err)
				continue
			}
			yes, known := c.Autoinstall()
			if known && !yes {
				continue
			}
			m := m
			pick = &m // versions come oldest first: the last one wins
			note = ""
			if !known {
				note = c.Why("AUTOINSTALL")
			}
		}
		if pick != nil {
			if note != "" {
				s.b.Report.Notef("%s: building it for %s and letting dkms decide: %s", report.MV(pick.Name, pick.Version), report.Name(kernel), note)
			}
			jobs = append(jobs, *pick)
		}
	}
	return jobs
}

// StandsIn tells whether m, installed for kernel, is a kept build put
// back in place of a newer version that failed there: autoinstall and
// rebuild try the newest version again, and if it fails the kept build
// stays installed (a failed dkms build leaves the installed one alone).
func (s *Session) StandsIn(m dkms.Module, kernel string) bool {
	if !s.standIns[confKey{m.Name, m.Version, kernel}] {
		return false
	}
	newest, ok := s.tree.Newest(m.Name)
	return ok && newest.Version != m.Version
}

// standIns reads kept.json for the builds put back; a file that cannot be
// read is one warning and none (the kept builds then stay as they are).
func standIns(st *state.Store, rep *report.Reporter) map[confKey]bool {
	kept, err := st.LoadKept()
	if err != nil {
		rep.Warnf("%v", err)
		return nil
	}
	out := map[confKey]bool{}
	for _, b := range kept.Builds {
		if !b.PutBack.IsZero() {
			out[confKey{b.Module, b.Version, b.Kernel}] = true
		}
	}
	return out
}

// Wanted tells whether autoinstall would build module version m for
// kernel, and if not, why: its dkms.conf does not set AUTOINSTALL, or the
// kernel is unsupported. An unreadable dkms.conf is wanted, with the error
// as the reason, so that it is never mistaken for "nothing to do".
func (b *Builder) Wanted(m dkms.Module, kernel string) (bool, error) {
	c, err := b.conf(m, kernel)
	if err != nil {
		return true, err
	}
	if yes, known := c.Autoinstall(); known && !yes {
		return false, nil
	}
	return c.Unsupported(kernel, b.Arch, b.kconfig(kernel)) == "", nil
}

func (b *Builder) conf(m dkms.Module, kernel string) (*dkms.Conf, error) {
	return dkms.ReadConf(m.ConfFile(b.Paths.DKMSTree()), b.Paths.DKMSConfDir(), m.Name, m.Version, kernel, b.Arch)
}

// maxKernelConfig bounds the kernel's .config (a few hundred kB).
const maxKernelConfig = 16 << 20

func (b *Builder) kconfig(kernel string) func() []byte {
	return func() []byte {
		data, err := file.ReadRegular(b.Paths.KernelConfig(kernel), maxKernelConfig)
		if err != nil {
			return nil
		}
		return data
	}
}

// host is the machine, as far as the build lock's notes need it.
func (b *Builder) host() host.Host { return host.Host{Paths: b.Paths} }

// keep keeps err if it is the first.
func (n *noteError) keep(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		n.err = err
	}
}

// say says the error once: a lost note means a dkms-guard killed now
// leaves its builds running unseen.
func (n *noteError) say(rep *report.Reporter) {
	n.mu.Lock()
	err, said := n.err, n.said
	n.said = n.said || err != nil
	n.mu.Unlock()
	if err != nil && !said {
		rep.Warnf("cannot note the running builds in the build lock (%v): if this dkms-guard is killed, the next one cannot stop what it left running", err)
	}
}

// Result is a new result of module j for kernel, labelled and stamped.
func (s *Session) Result(j dkms.Module, kernel string, o state.Outcome) state.Result {
	r := state.Result{
		Run: s.Labels.Run, Kernel: kernel, Module: j.Name, Version: j.Version,
		Outcome: o, By: s.Labels.By, Time: s.b.Now().UTC(),
	}
	if s.Labels.Owner != nil {
		r.Owner = s.Labels.Owner(j.Name)
	}
	return r
}

// Failed is a failure of j for kernel that happened outside dkms-guard
// (dkms's own log at dkmsLog), recorded with its severity and a copy of
// that log, which the next build of j would overwrite.
func (s *Session) Failed(j dkms.Module, kernel, why, dkmsLog string) state.Result {
	r := s.Result(j, kernel, state.Failed)
	r.Reason = why
	r.Severity = s.severity(j.Name)
	if dkmsLog == "" {
		return r
	}
	name := s.b.Paths.BuildLog(kernel, j.Name, j.Version)
	w, err := openLog(s.b.Paths, name)
	if err != nil {
		return r
	}
	fmt.Fprintf(w, "dkms-guard: %s for %s was built by dkms itself; its log follows\n", report.MV(j.Name, j.Version), kernel)
	appendFile(w, dkmsLog)
	if w.close() == nil {
		r.Log = s.b.Paths.Rel(name)
	}
	return r
}

// Complain reports r's failure as its severity says (E: or W:).
func (s *Session) Complain(r state.Result, format string, args ...any) {
	complain(s.b.Report, r.Severity, format, args...)
}

func (s *Session) severity(module string) state.Severity {
	if s.Labels.Severity == nil {
		return state.SevWarning
	}
	if sev := s.Labels.Severity(module); sev != state.SevNone {
		return sev
	}
	return state.SevWarning
}

// complain reports a failure to rep as sev says (E: or W:).
func complain(rep *report.Reporter, sev state.Severity, format string, args ...any) {
	if sev == state.SevError {
		rep.Errorf(format, args...)
	} else {
		rep.Warnf(format, args...)
	}
}

// skip is a result for j that was not built, said to rep.
func (s *Session) skip(rep *report.Reporter, j dkms.Module, kernel, why string) state.Result {
	r := s.Result(j, kernel, state.Skipped)
	r.Reason = why
	r.Severity = s.severity(j.Name)
	complain(rep, r.Severity, "%s: not built for %s: %s", report.MV(j.Name, j.Version), report.Name(kernel), why)
	return r
}

// openLog creates the build log name, replacing the one of an earlier
// attempt, strictly inside the log directory (see logDir). Without one (a
// full or read-only /var/log, a link planted in the way), output is
// discarded.
func openLog(p paths.Paths, name string) (*logWriter, error) {
	root, err := logDir(p, true)
	if err != nil {
		return &logWriter{}, err
	}
	defer root.Close()
	rel, err := filepath.Rel(p.LogDir(), name)
	if err != nil {
		return &logWriter{}, err
	}
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return &logWriter{}, err
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, 0o644)
	if err != nil {
		return &logWriter{}, err
	}
	return &logWriter{f: f}, nil
}

// RemoveLogs removes kernel's build logs (it is being removed), never
// anything a link in the log directory points at.
func RemoveLogs(p paths.Paths, kernel string) error {
	root, err := logDir(p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	return root.RemoveAll(paths.SafeName(kernel))
}

// OpenLogDir opens the log directory, made if missing, as the build logs
// are written there (see logDir): for anything else dkms-guard keeps in
// it, such as a crash report.
func OpenLogDir(p paths.Paths) (*os.Root, error) { return logDir(p, true) }

// logDir opens the log directory (made if missing, with create) as an
// os.Root, which keeps every path below it inside it. The directory
// itself must be a real one: on Ubuntu group syslog may write to
// /var/log, and a link there would send root's writes anywhere.
func logDir(p paths.Paths, create bool) (*os.Root, error) {
	dir := p.LogDir()
	if create {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (a symbolic link?): not writing through it", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if rfi, err := root.Stat("."); err != nil || !os.SameFile(fi, rfi) {
		root.Close()
		return nil, fmt.Errorf("%s was replaced while being opened: not writing there", dir)
	}
	return root, nil
}

// logWriter keeps the first error writing the build log. It is not an
// *os.File on purpose: dkms's output then comes through a pipe and its
// write errors (ENOSPC) are seen here, not lost in the child. Once a write
// failed, the rest is dropped; dkms itself never sees an error.
type logWriter struct {
	f   *os.File
	err error
}

func (l *logWriter) Write(p []byte) (int, error) {
	if l.f != nil && l.err == nil {
		if _, err := l.f.Write(p); err != nil {
			l.err = err
		}
	}
	return len(p), nil
}

// close closes the file and returns the first error writing it.
func (l *logWriter) close() error {
	if l.f == nil {
		return nil
	}
	if err := l.f.Close(); err != nil && l.err == nil {
		l.err = err
	}
	l.f = nil
	return l.err
}

// appendDKMSLogs copies dkms's own make.log into ours: dkms keeps it in
// M/V/build/, which the next kernel's build overwrites, or in
// M/V/K/A/log/ after a successful build.
func appendDKMSLogs(w io.Writer, tree string, j dkms.Module, kernel, arch string) {
	for _, p := range []string{
		filepath.Join(tree, j.Name, j.Version, kernel, arch, "log", "make.log"),
		filepath.Join(tree, j.Name, j.Version, "build", "make.log"),
	} {
		if appendFile(w, p) {
			return
		}
	}
}

// appendFile copies the last MiB of the regular file p into w, with a
// header; it tells whether there was such a file.
func appendFile(w io.Writer, p string) bool {
	f, fi, err := file.OpenRegular(p)
	if err != nil {
		return false
	}
	defer f.Close()
	const max = 1 << 20
	if fi.Size() > max {
		f.Seek(-max, io.SeekEnd)
	}
	fmt.Fprintf(w, "\n--- dkms-guard: copy of %s ---\n", p)
	// Hide w's ReadFrom: dkms may have set O_APPEND on a file description
	// shared with it, and copy_file_range(2) refuses O_APPEND (EBADF).
	if _, err := io.Copy(struct{ io.Writer }{w}, io.LimitReader(f, max)); err != nil {
		fmt.Fprintf(w, "\n--- dkms-guard: copy ended early: %v ---\n", err)
	}
	return true
}

// noFollow keeps a planted symlink in the log directory from redirecting
// a root-owned write.
const noFollow = syscall.O_NOFOLLOW
