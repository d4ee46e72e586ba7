package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Batch is the module versions to build for one kernel.
type Batch struct {
	Kernel string
	Jobs   []dkms.Module
}

// Parallelism is how builds share the CPUs: Builds of them at once, each
// with make -j MakeJobs (0: dkms's own default, -j nproc, as stock dkms),
// and make -j Solo for a build that runs alone.
type Parallelism struct{ Builds, MakeJobs, Solo int }

// defaultBuilds caps the default: past four modules at once, their
// compilers compete for memory more than they gain.
const defaultBuilds = 4

// Share divides cpus between builds: jobs of them at once (0: as many as
// there are CPUs, at most four), each with make -j cpus/jobs, rounded up,
// plus one: a kbuild spends part of its time in serial steps (dkms's own
// bash, modpost, the final link), and the extra job keeps the CPUs busy
// then, while make -j is never multiplied by the number of modules (on 2
// CPUs: two builds of -j2, not the -j1 that left a long build alone on
// one CPU at the end). One build at a time leaves -j to dkms, exactly as
// stock dkms runs.
func Share(jobs, cpus int) Parallelism {
	cpus = max(cpus, 1)
	if jobs <= 0 {
		jobs = min(cpus, defaultBuilds)
	}
	if jobs == 1 {
		return Parallelism{Builds: 1}
	}
	return Parallelism{Builds: jobs, MakeJobs: (cpus+jobs-1)/jobs + 1, Solo: cpus}
}

// Within keeps builds side by side under total make jobs in all (dkms's
// parallel_jobs, the administrator's -j): fewer builds, a smaller -j each.
func (p Parallelism) Within(total int) Parallelism {
	if p.Builds <= 1 || total < 1 {
		return p
	}
	if builds := min(p.Builds, total); builds > 1 {
		return Parallelism{Builds: builds, MakeJobs: max(1, min(p.MakeJobs, total/builds)), Solo: min(p.Solo, total)}
	}
	return Parallelism{Builds: 1} // dkms applies parallel_jobs itself
}

// Build installs jobs for kernel; see BuildAll.
func (s *Session) Build(ctx context.Context, kernel string, jobs []dkms.Module) []state.Result {
	return s.BuildAll(ctx, []Batch{{Kernel: kernel, Jobs: jobs}})
}

// BuildAll builds and installs every batch's modules, each kernel's in
// BUILD_DEPENDS order, and returns their results in a stable order: the
// batches' order, each kernel's modules in BUILD_DEPENDS order.
//
// With Parallel.Builds above one, modules build side by side (`dkms
// build`), never one module version for two kernels at once (dkms builds
// every kernel of a version in the same M/V/build directory, and keeps a
// failed build's make.log there), and never before the signing key
// exists (dkms creates it on the first build, unlocked). Installs (`dkms
// install`) run one at a time in this goroutine, and, where dkms takes
// --no-depmod, depmod once per kernel after its last install: dkms's
// upstream dropped parallel builds in 2014 because concurrent depmod runs
// broke. Each module's messages are held until the modules before it are
// done, so that the lines, results and summary are those of one build at
// a time; only the progress lines show what runs.
func (s *Session) BuildAll(ctx context.Context, batches []Batch) []state.Result {
	sc := s.schedule(batches)
	for {
		sc.startReady(ctx)
		sc.flush()
		if sc.running == 0 {
			break
		}
		sc.built(ctx, <-sc.done)
	}
	for _, j := range sc.jobs {
		if j.state != finished { // cannot happen; never loop or lose one
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, "dkms-guard could not schedule its build (a bug: please report it)"))
		}
	}
	sc.flush()
	out := make([]state.Result, len(sc.jobs))
	for i, j := range sc.jobs {
		out[i] = j.r
	}
	return out
}

type jobState int

const (
	waiting jobState = iota
	running
	finished
)

// job is one module version for one kernel.
type job struct {
	n      int // 1-based, for the progress line
	m      dkms.Module
	kernel string
	conf   *dkms.Conf // nil when unreadable: dkms decides
	state  jobState
	r      state.Result
	// rep holds the job's messages in lines until its turn (flush).
	rep   *report.Reporter
	lines bytes.Buffer
	// The build log; buildErr is the build step's outcome, set by the
	// goroutine running it and read after it is received from done.
	log      *logWriter
	logPath  string
	logErr   error
	buildErr error
	// unsupported is the BUILD_EXCLUSIVE verdict, worked out once.
	unsupported *string
	solo        bool // built and installed by one dkms install, alone
}

func (j *job) mv() string { return report.MV(j.m.Name, j.m.Version) }

// key is j's module version, which one build at a time may use.
func (j *job) key() string { return j.m.Name + "/" + j.m.Version }

// scheduler is one BuildAll's bookkeeping; only BuildAll's goroutine
// touches it, except notes (mu).
type scheduler struct {
	s         *Session
	jobs      []*job
	installed map[string]map[string]bool // kernel, module: installed, before or now
	batch     map[string]map[string]*job // kernel, module: its job
	busy      map[string]bool            // module/version being built
	left      map[string]int             // kernel: jobs not finished
	last      map[string]*job            // kernel: its last job, which says depmod's trouble
	depmod    map[string]bool            // kernel: installed without depmod
	signed    bool                       // the signing key exists, or dkms does not sign
	running   int
	flushed   int
	started   int // builds started, for progress lines: [started/jobs]
	done      chan *job
	// queue is the waiting jobs in the order they start: job order one
	// at a time; side by side the biggest sources first, so that a long
	// build (zfs, nvidia) does not start last and run alone at the end.
	queue []*job

	mu    sync.Mutex
	notes map[int]string // job n: its line in the build lock's note
}

// schedule orders the batches' jobs (see order) and reads what each needs.
func (s *Session) schedule(batches []Batch) *scheduler {
	sc := &scheduler{
		s: s, installed: map[string]map[string]bool{}, batch: map[string]map[string]*job{},
		busy: map[string]bool{}, left: map[string]int{}, last: map[string]*job{}, depmod: map[string]bool{},
		notes: map[int]string{},
	}
	sc.signed = s.b.Parallel.Builds <= 1 || signingKey(s.b.Paths)
	for _, b := range batches {
		k := b.Kernel
		if sc.installed[k] == nil {
			sc.installed[k], sc.batch[k] = map[string]bool{}, map[string]*job{}
			for _, name := range s.tree.Names() {
				if _, ok := s.tree.InstalledFor(name, k); ok {
					sc.installed[k][name] = true
				}
			}
		}
		ordered, cycle := s.order(k, b.Jobs)
		for _, m := range append(ordered, cycle...) {
			j := &job{n: len(sc.jobs) + 1, m: m, kernel: k}
			j.conf, _ = s.conf(m, k)
			j.rep = report.New(&j.lines)
			sc.jobs = append(sc.jobs, j)
			if sc.batch[k][m.Name] == nil {
				sc.batch[k][m.Name] = j
			}
			sc.left[k]++
			sc.last[k] = j
		}
		for _, m := range cycle {
			j := sc.batch[k][m.Name]
			sc.finish(context.Background(), j, s.skip(j.rep, m, k, dependsWhy+"form a cycle"))
		}
	}
	sc.done = make(chan *job, len(sc.jobs))
	sc.queue = slices.Clone(sc.jobs)
	if s.b.Parallel.Builds > 1 {
		size := map[*job]int64{}
		for _, j := range sc.queue {
			size[j] = sourceSize(j.m.SourceDir(s.b.Paths.DKMSTree()))
		}
		sort.SliceStable(sc.queue, func(a, b int) bool { return size[sc.queue[a]] > size[sc.queue[b]] })
	}
	return sc
}

// order sorts one kernel's jobs so that a module comes after the modules
// of the list its BUILD_DEPENDS names, keeping the list's order otherwise;
// the modules caught in a cycle come last, by name.
func (s *Session) order(kernel string, jobs []dkms.Module) (ordered, cycle []dkms.Module) {
	pending := map[string]bool{}
	for _, j := range jobs {
		pending[j.Name] = true
	}
	remaining := jobs
	for len(remaining) > 0 {
		var next []dkms.Module
		for _, j := range remaining {
			c, _ := s.conf(j, kernel)
			if slices.ContainsFunc(c.BuildDepends(), func(d string) bool { return pending[d] }) {
				next = append(next, j)
				continue
			}
			ordered = append(ordered, j)
			delete(pending, j.Name)
		}
		if len(next) == len(remaining) {
			sort.Slice(next, func(a, b int) bool { return next[a].Name < next[b].Name })
			return ordered, next
		}
		remaining = next
	}
	return ordered, nil
}

// maxSourceFiles bounds sourceSize's walk.
const maxSourceFiles = 20000

// sourceSize is how many bytes of regular files a module's source holds,
// a fair guess at how long it builds; it never follows a link further.
func sourceSize(dir string) int64 {
	var total int64
	files := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || files > maxSourceFiles {
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			files++
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// startReady goes through the waiting jobs in queue order: a job whose
// BUILD_DEPENDS failed or cannot be had is skipped, one whose
// dependencies are installed is ready unless its module version is being
// built; the ready ones start as the build slots and the signing key
// allow.
func (sc *scheduler) startReady(ctx context.Context) {
	s := sc.s
	queue := sc.queue[:0]
	for _, j := range sc.queue {
		if j.state == waiting {
			queue = append(queue, j)
		}
	}
	sc.queue = queue
	var ready []*job
	chosen := map[string]bool{} // module versions picked in this pass
	for _, j := range sc.queue {
		var failedDeps, missing, absent []string
		wait := false
		for _, d := range j.conf.BuildDepends() {
			dj := sc.batch[j.kernel][d]
			switch {
			case sc.installed[j.kernel][d]:
			case dj != nil && dj.state == finished:
				failedDeps = append(failedDeps, d)
			case dj != nil:
				wait = true
			case len(s.tree.Versions(d)) > 0:
				absent = append(absent, d)
			default:
				missing = append(missing, d)
			}
		}
		switch {
		case len(failedDeps) > 0:
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, fmt.Sprintf(dependsWhy+"%s was not installed", strings.Join(failedDeps, ", "))))
		case len(missing) > 0:
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, fmt.Sprintf(dependsWhy+"%s is not a DKMS module here", strings.Join(missing, ", "))))
		case len(absent) > 0:
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, fmt.Sprintf(dependsWhy+"%s is not installed for this kernel (dkms-guard rebuild --module %s first)", strings.Join(absent, ", "), absent[0])))
		case wait:
		case ctx.Err() != nil:
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, interrupted(ctx, "dkms-guard was interrupted before building it")))
		default:
			if j.unsupported == nil {
				why := j.conf.Unsupported(j.kernel, s.b.Arch, s.b.kconfig(j.kernel))
				j.unsupported = &why
			}
			if why := *j.unsupported; why != "" {
				r := s.Result(j.m, j.kernel, state.Unsupported)
				r.Reason = why
				j.rep.Notef("%s: not built for %s, unsupported: %s", j.mv(), report.Name(j.kernel), why)
				sc.finish(ctx, j, r)
				continue
			}
			if !sc.busy[j.key()] && !chosen[j.key()] {
				chosen[j.key()] = true
				ready = append(ready, j)
			}
		}
	}
	room := max(1, s.b.Parallel.Builds) - sc.running
	if !sc.signed { // the first build makes the key: alone
		room = min(room, 1-sc.running)
	}
	if room <= 0 || len(ready) == 0 {
		return
	}
	take := ready[:min(room, len(ready))]
	// A build that will run alone (nothing else can start until it ends)
	// gets the whole machine, build and install in one dkms run: one
	// module for several kernels, the first build while there is no key.
	solo := s.b.Parallel.Builds > 1 && sc.running == 0 && len(take) == 1 && (len(ready) == 1 || !sc.signed)
	for _, j := range take {
		sc.start(ctx, j, solo)
	}
}

// start opens j's log and starts its build step in a goroutine; with one
// build at a time there is none: `dkms install` builds, as in stock dkms.
func (sc *scheduler) start(ctx context.Context, j *job, solo bool) {
	b := sc.s.b
	j.state = running
	sc.running++
	sc.busy[j.key()] = true
	j.logPath = b.Paths.BuildLog(j.kernel, j.m.Name, j.m.Version)
	j.log, j.logErr = openLog(j.logPath)
	if j.logErr != nil {
		// A full or read-only /var/log must not stop the build itself.
		j.rep.Warnf("cannot keep the build log of %s for %s: %v", j.mv(), report.Name(j.kernel), j.logErr)
	}
	fmt.Fprintf(j.log, "dkms-guard: %s for %s (%s)\n", j.mv(), j.kernel, b.Now().UTC().Format(time.RFC3339))
	sc.started++
	b.Report.Notef("[%d/%d] building %s for %s", sc.started, len(sc.jobs), j.mv(), report.Name(j.kernel))
	if b.Parallel.Builds <= 1 {
		sc.done <- j
		return
	}
	j.solo = solo
	go func() {
		if solo {
			fmt.Fprintf(j.log, "dkms-guard: dkms install -m %s -v %s -k %s -j %d\n", j.m.Name, j.m.Version, j.kernel, b.Parallel.Solo)
			j.buildErr = b.DKMS.Install(ctx, j.m.Name, j.m.Version, j.kernel, b.NoDepmod, b.Parallel.Solo, j.log, sc.noter(j, "install"))
		} else {
			fmt.Fprintf(j.log, "dkms-guard: dkms build -m %s -v %s -k %s -j %d\n", j.m.Name, j.m.Version, j.kernel, b.Parallel.MakeJobs)
			j.buildErr = b.DKMS.Build(ctx, j.m.Name, j.m.Version, j.kernel, b.Parallel.MakeJobs, j.log, sc.noter(j, "build"))
		}
		// At once: its process group id may be anyone's from now on.
		sc.noter(j, "")(0)
		sc.done <- j
	}()
}

// noter returns the callback that notes a running dkms in the build lock,
// so that a dkms-guard killed mid-build has its builds stopped by the next.
func (sc *scheduler) noter(j *job, what string) func(pgid int) {
	return func(pgid int) {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if pgid == 0 {
			delete(sc.notes, j.n)
		} else {
			sc.notes[j.n] = fmt.Sprintf("pgid %d dkms %s %s for %s", pgid, what, j.mv(), report.Name(j.kernel))
		}
		if sc.s.lock == nil {
			return
		}
		lines := make([]string, 0, len(sc.notes))
		for _, n := range slices.Sorted(maps.Keys(sc.notes)) {
			lines = append(lines, sc.notes[n])
		}
		sc.s.lock.Note(strings.Join(lines, "\n"))
	}
}

// built installs what j's build step built (or, one build at a time,
// builds and installs it) and records the outcome.
func (sc *scheduler) built(ctx context.Context, j *job) {
	s, b := sc.s, sc.s.b
	sc.running--
	err := j.buildErr
	if err == nil && !j.solo && ctx.Err() != nil {
		// Built, but the time is up: installing would only be killed.
		j.log.close()
		delete(sc.busy, j.key())
		sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, interrupted(ctx, "dkms-guard was interrupted after building it, before installing it")))
		return
	}
	if err == nil && !j.solo {
		fmt.Fprintf(j.log, "dkms-guard: dkms install -m %s -v %s -k %s\n", j.m.Name, j.m.Version, j.kernel)
		err = b.DKMS.Install(ctx, j.m.Name, j.m.Version, j.kernel, b.NoDepmod, 0, j.log, sc.noter(j, "install"))
		sc.noter(j, "")(0)
	}
	var xe *program.ExitError
	errors.As(err, &xe)
	if !sc.signed && (err == nil || signingKey(b.Paths)) {
		// The key exists now, or a build went through without making
		// one: dkms does not sign here. A build that failed may have
		// died before dkms's signing step: the next one still runs alone.
		sc.signed = true
	}
	r := s.Result(j.m, j.kernel, state.Installed)
	if j.logErr == nil {
		r.Log = b.Paths.Rel(j.logPath)
	}
	logged := func() {
		// A log that filled the disk halfway is no place to send anyone.
		if werr := j.log.close(); werr != nil && j.logErr == nil {
			j.rep.Warnf("the build log of %s for %s, %s, could not be written: %v", j.mv(), report.Name(j.kernel), r.Log, werr)
			r.Log = ""
		}
	}
	switch {
	case err == nil:
		j.rep.Notef("%s: installed for %s", j.mv(), report.Name(j.kernel))
		if b.NoDepmod {
			sc.depmod[j.kernel] = true
		}
		logged()
	case xe != nil && xe.Code == dkms.Unsupported:
		r.Outcome = state.Unsupported
		r.Exit = xe.Code
		r.Reason = "dkms exit 77: the module does not apply to this kernel (BUILD_EXCLUSIVE)"
		j.rep.Notef("%s: not built for %s, unsupported: %s", j.mv(), report.Name(j.kernel), r.Reason)
		logged()
	default:
		r.Outcome = state.Failed
		r.Severity = s.severity(j.m.Name)
		r.Reason = err.Error()
		if xe != nil {
			r.Exit = xe.Code
		} else if errors.Is(err, program.ErrNotFound) {
			r.Reason = "dkms " + program.ErrNotFound.Error()
		}
		// Before the module version is free again: its next build
		// replaces build/make.log.
		appendDKMSLogs(j.log, b.Paths.DKMSTree(), j.m, j.kernel, b.Arch)
		logged()
		s.complainTo(j.rep, r.Severity, "%s: build failed for %s (%s)%s", j.mv(), report.Name(j.kernel), r.Reason, LogNote(r))
	}
	delete(sc.busy, j.key())
	sc.finish(ctx, j, r)
}

// dependsWhy begins the reason of every module left unbuilt because of its
// BUILD_DEPENDS.
const dependsWhy = "its BUILD_DEPENDS "

// SkippedForDepends tells whether r is a module left unbuilt because of
// its BUILD_DEPENDS (one failed, is missing, or they form a cycle).
func SkippedForDepends(r state.Result) bool {
	return r.Outcome == state.Skipped && strings.HasPrefix(r.Reason, dependsWhy)
}

// LogNote points at r's build log (", see LOG"), if it has one: the end of
// every message about a build.
func LogNote(r state.Result) string {
	if r.Log == "" {
		return ""
	}
	return ", see " + r.Log
}

// signingKey tells whether dkms's signing key and certificate exist.
func signingKey(p paths.Paths) bool { return paths.Exists(p.MOKKey()) && paths.Exists(p.MOKCert()) }

// finish records j's result; after a kernel's last job, depmod runs for
// it once if its installs left that to dkms-guard.
func (sc *scheduler) finish(ctx context.Context, j *job, r state.Result) {
	j.state, j.r = finished, r
	if r.Outcome == state.Installed {
		sc.installed[j.kernel][j.m.Name] = true
	}
	sc.left[j.kernel]--
	if sc.left[j.kernel] == 0 && sc.depmod[j.kernel] {
		sc.depmod[j.kernel] = false
		sc.runDepmod(ctx, j.kernel)
	}
	// Said before the next build's progress line, as one at a time would.
	sc.flush()
}

// runDepmod runs depmod once for kernel, after its last install.
func (sc *scheduler) runDepmod(ctx context.Context, kernel string) {
	// Even when interrupted: the modules are installed, and modules.dep
	// must say so.
	var out program.Capped
	out.Max = 4096
	err := sc.s.b.DKMS.Depmod(context.WithoutCancel(ctx), kernel, &out)
	if err == nil {
		return
	}
	// dkms itself rolls a module back when depmod fails (exit 6): here the
	// modules stay installed, and are reported failed until depmod works.
	sev := state.SevWarning
	var names []string
	for _, o := range sc.jobs {
		if o.kernel == kernel && o.state == finished && o.r.Outcome == state.Installed {
			o.r.Outcome = state.Failed
			o.r.Severity = sc.s.severity(o.m.Name)
			o.r.Reason = fmt.Sprintf("installed, but depmod -a %s failed (%v)", kernel, err)
			if o.r.Severity == state.SevError {
				sev = state.SevError
			}
			names = append(names, o.mv())
		}
	}
	sc.s.complainTo(sc.last[kernel].rep, sev, "depmod -a %s failed (%v) after installing %s: they may not load until it succeeds; run depmod -a %s%s",
		report.Name(kernel), err, strings.Join(names, ", "), report.Name(kernel), firstLine(out.String()))
}

// interrupted says why ctx ended: its cause (post-invoke's time budget),
// else what a signal means here.
func interrupted(ctx context.Context, signalled string) string {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause.Error()
	}
	return signalled
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return ""
	}
	return ": " + s
}

// flush says the finished jobs' messages, in order, up to the first job
// still waiting or running.
func (sc *scheduler) flush() {
	for sc.flushed < len(sc.jobs) && sc.jobs[sc.flushed].state == finished {
		j := sc.jobs[sc.flushed]
		sc.s.b.Report.Replay(j.lines.Bytes())
		j.lines.Reset()
		sc.flushed++
	}
}
