package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"runtime/debug"
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

// The schedule's rules, each a named step below:
//   - a module version builds for one kernel at a time (oneVersionAtATime):
//     dkms builds every kernel of a version in the same M/V/build directory;
//   - installs and depmod run one at a time, in BuildAll's goroutine
//     (built, finish): concurrent depmod runs broke dkms's upstream;
//   - the first build runs alone until dkms's signing key exists (room):
//     dkms makes it, unlocked, on its first build;
//   - side by side, the biggest sources start first (biggestFirst);
//   - a build that will run alone gets the whole machine (runsAlone).

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
// batches' order, each kernel's modules in BUILD_DEPENDS order. A kernel
// named in several batches, or a module version named twice for a
// kernel, is built once.
//
// With Parallel.Builds above one, modules build side by side (`dkms
// build`); installs (`dkms install`) run one at a time in this goroutine,
// and, where dkms takes --no-depmod, depmod once per kernel after its
// last install. Each module's messages are held until the modules before
// it are done, so that the lines, results and summary are those of one
// build at a time; only the progress lines show what runs.
func (s *Session) BuildAll(ctx context.Context, batches []Batch) []state.Result {
	sc := newScheduler(s, dedupe(batches))
	for {
		sc.startReady(ctx)
		sc.flush()
		if sc.running == 0 {
			break
		}
		if s.b.idle != nil {
			s.b.idle(sc.running)
		}
		sc.built(ctx, <-sc.done)
	}
	for _, j := range sc.jobs {
		if j.state != finished { // cannot happen; never loop or lose one
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, "dkms-guard could not schedule its build (a bug: please report it)"))
		}
	}
	sc.flush()
	s.noteErr.say(s.b.Report)
	out := make([]state.Result, len(sc.jobs))
	for i, j := range sc.jobs {
		out[i] = j.r
	}
	return out
}

// dedupe merges the batches of one kernel into the first, and drops a
// module version named twice for a kernel: each job is built once
// (`rebuild --kernel K --kernel K`).
func dedupe(batches []Batch) []Batch {
	var out []Batch
	at := map[string]int{}
	seen := map[string]map[string]bool{}
	for _, b := range batches {
		i, ok := at[b.Kernel]
		if !ok {
			i = len(out)
			at[b.Kernel], seen[b.Kernel] = i, map[string]bool{}
			out = append(out, Batch{Kernel: b.Kernel})
		}
		for _, m := range b.Jobs {
			if key := mvOf(m).Key(); !seen[b.Kernel][key] {
				seen[b.Kernel][key] = true
				out[i].Jobs = append(out[i].Jobs, m)
			}
		}
	}
	return out
}

func mvOf(m dkms.Module) state.MV { return state.MV{Module: m.Name, Version: m.Version} }

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
	k      *kernelJobs
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
	// installLeft: `dkms install` is still to run, in BuildAll's
	// goroutine, once the job comes back from done (always one build at
	// a time, where that install builds too; after a build step side by
	// side). A build that ran alone was installed by its own dkms install.
	installLeft bool
	// unsupported is the BUILD_EXCLUSIVE verdict, worked out once.
	unsupported *string
}

func (j *job) mv() string { return report.MV(j.m.Name, j.m.Version) }

// key is j's module version, which one build at a time may use.
func (j *job) key() string { return mvOf(j.m).Key() }

// kernelJobs is one kernel's part of the schedule.
type kernelJobs struct {
	name      string
	installed map[string]bool // module: installed, before or now
	byModule  map[string]*job // module: its job
	left      int             // jobs not finished
	last      *job            // its last job, which says depmod's trouble
	depmod    bool            // installed without depmod since
}

// scheduler is one BuildAll's bookkeeping; only BuildAll's goroutine
// touches it, except notes (mu).
type scheduler struct {
	s       *Session
	jobs    []*job
	kernels map[string]*kernelJobs
	busy    map[string]bool // module/version being built
	signed  bool            // the signing key exists, or dkms does not sign
	running int
	flushed int
	started int // builds started, for progress lines: [started/jobs]
	done    chan *job
	// queue is the waiting jobs in the order they start: job order one
	// at a time, the biggest sources first side by side (biggestFirst).
	queue []*job

	mu    sync.Mutex
	notes map[int]string // job n: its line in the build lock's note
}

// newScheduler orders the batches' jobs (see order) and reads what each needs.
func newScheduler(s *Session, batches []Batch) *scheduler {
	sc := &scheduler{s: s, kernels: map[string]*kernelJobs{}, busy: map[string]bool{}, notes: map[int]string{}}
	sc.signed = s.Parallel.Builds <= 1 || signingKey(s.b.Paths)
	for _, b := range batches {
		sc.add(b)
	}
	sc.done = make(chan *job, len(sc.jobs))
	sc.queue = slices.Clone(sc.jobs)
	if s.Parallel.Builds > 1 {
		biggestFirst(sc.queue, s.b.Paths.DKMSTree())
	}
	return sc
}

// add makes b's jobs, in BUILD_DEPENDS order; those caught in a cycle are
// finished at once.
func (sc *scheduler) add(b Batch) {
	s := sc.s
	k := &kernelJobs{name: b.Kernel, installed: map[string]bool{}, byModule: map[string]*job{}}
	sc.kernels[b.Kernel] = k // dedupe made it the kernel's only batch
	for _, name := range s.tree.Names() {
		if _, ok := s.tree.InstalledFor(name, b.Kernel); ok {
			k.installed[name] = true
		}
	}
	confs := map[string]confRead{}
	for _, m := range b.Jobs {
		c, err := s.conf(m, b.Kernel)
		confs[mvOf(m).Key()] = confRead{c, err}
	}
	ordered, cycle := order(b.Jobs, func(m dkms.Module) *dkms.Conf { return confs[mvOf(m).Key()].conf })
	var made []*job
	for _, m := range append(ordered, cycle...) {
		j := &job{n: len(sc.jobs) + 1, m: m, kernel: b.Kernel, k: k, conf: confs[mvOf(m).Key()].conf}
		j.rep = report.New(&j.lines)
		if err := confs[mvOf(m).Key()].err; err != nil {
			// As docs/how-it-works.md's Limits say: what dkms-guard cannot read,
			// dkms decides.
			j.rep.Notef("%s: building it for %s and letting dkms decide: %v", j.mv(), report.Name(b.Kernel), err)
		}
		sc.jobs = append(sc.jobs, j)
		made = append(made, j)
		if k.byModule[m.Name] == nil {
			k.byModule[m.Name] = j
		}
		k.left++
		k.last = j
	}
	for _, j := range made[len(ordered):] {
		sc.finish(context.Background(), j, sc.skipDepends(j, "form a cycle"))
	}
}

// order sorts one kernel's jobs so that a module comes after the modules
// of the list its BUILD_DEPENDS names, keeping the list's order otherwise;
// the modules caught in a cycle come last, by name.
func order(jobs []dkms.Module, conf func(dkms.Module) *dkms.Conf) (ordered, cycle []dkms.Module) {
	pending := map[string]bool{}
	for _, j := range jobs {
		pending[j.Name] = true
	}
	remaining := jobs
	for len(remaining) > 0 {
		var next []dkms.Module
		for _, j := range remaining {
			if slices.ContainsFunc(conf(j).BuildDepends(), func(d string) bool { return pending[d] }) {
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

// biggestFirst sorts the queue by source size, biggest first, so that a
// long build (zfs, nvidia) does not start last and run alone at the end.
func biggestFirst(queue []*job, tree string) {
	size := map[*job]int64{}
	for _, j := range queue {
		size[j] = sourceSize(j.m.SourceDir(tree))
	}
	sort.SliceStable(queue, func(a, b int) bool { return size[queue[a]] > size[queue[b]] })
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

// startReady goes through the waiting jobs in queue order, finishes those
// that will never build (settle), and starts the ready ones as the build
// slots and the signing key allow.
func (sc *scheduler) startReady(ctx context.Context) {
	sc.queue = slices.DeleteFunc(sc.queue, func(j *job) bool { return j.state != waiting })
	var ready []*job
	chosen := map[string]bool{} // module versions picked in this pass
	for _, j := range sc.queue {
		if sc.settle(ctx, j) && oneVersionAtATime(j, sc.busy, chosen) {
			ready = append(ready, j)
		}
	}
	take := ready[:min(sc.room(), len(ready))]
	alone := sc.runsAlone(len(take), len(ready))
	for _, j := range take {
		sc.start(ctx, j, alone)
	}
}

// settle tells whether waiting job j may build now. One whose
// BUILD_DEPENDS failed or cannot be had, or that does not apply to its
// kernel, is finished here, as is every job once ctx is done; one whose
// dependencies are still to build waits.
func (sc *scheduler) settle(ctx context.Context, j *job) bool {
	s := sc.s
	wait, why := sc.dependsOn(j)
	switch {
	case why != "":
		sc.finish(ctx, j, sc.skipDepends(j, why))
		return false
	case wait:
		return false
	case ctx.Err() != nil:
		sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, interrupted(ctx, "dkms-guard was interrupted before building it")))
		return false
	}
	if j.unsupported == nil {
		why := j.conf.Unsupported(j.kernel, s.b.Arch, s.b.kconfig(j.kernel))
		j.unsupported = &why
	}
	if why := *j.unsupported; why != "" {
		r := s.Result(j.m, j.kernel, state.Unsupported)
		r.Reason = why
		j.rep.Notef("%s: not built for %s, unsupported: %s", j.mv(), report.Name(j.kernel), why)
		sc.finish(ctx, j, r)
		return false
	}
	return true
}

// dependsOn reads j's BUILD_DEPENDS against its kernel: wait while one is
// still to build here; else why j cannot build (one failed here, is no
// DKMS module, or is not installed for the kernel), "" when it can.
func (sc *scheduler) dependsOn(j *job) (wait bool, why string) {
	var failed, missing, absent []string
	for _, d := range j.conf.BuildDepends() {
		dj := j.k.byModule[d]
		switch {
		case j.k.installed[d]:
		case dj != nil && dj.state == finished:
			failed = append(failed, d)
		case dj != nil:
			wait = true
		case len(sc.s.tree.Versions(d)) > 0:
			absent = append(absent, d)
		default:
			missing = append(missing, d)
		}
	}
	switch {
	case len(failed) > 0:
		return false, strings.Join(failed, ", ") + " was not installed"
	case len(missing) > 0:
		return false, strings.Join(missing, ", ") + " is not a DKMS module here"
	case len(absent) > 0:
		return false, fmt.Sprintf("%s is not installed for this kernel (dkms-guard rebuild --module %s first)", strings.Join(absent, ", "), absent[0])
	}
	return wait, ""
}

// oneVersionAtATime tells whether j's module version is free to build:
// not building, nor picked in this pass (chosen), for another kernel.
func oneVersionAtATime(j *job, busy, chosen map[string]bool) bool {
	if busy[j.key()] || chosen[j.key()] {
		return false
	}
	chosen[j.key()] = true
	return true
}

// room is how many builds may start now: the free build slots, but only
// one build in all until dkms's signing key exists.
func (sc *scheduler) room() int {
	room := max(1, sc.s.Parallel.Builds) - sc.running
	if !sc.signed {
		room = min(room, 1-sc.running)
	}
	return max(room, 0)
}

// runsAlone tells whether the one build about to start (of ready ones)
// will run alone, nothing else able to start until it ends: one module
// for several kernels, or the first build while there is no key. It then
// gets the whole machine, build and install in one dkms run.
func (sc *scheduler) runsAlone(take, ready int) bool {
	return sc.s.Parallel.Builds > 1 && sc.running == 0 && take == 1 && (ready == 1 || !sc.signed)
}

// start opens j's log and starts its build: in a goroutine side by side;
// one at a time, `dkms install` builds it in BuildAll's goroutine, as in
// stock dkms.
func (sc *scheduler) start(ctx context.Context, j *job, alone bool) {
	b, par := sc.s.b, sc.s.Parallel
	j.state = running
	sc.running++
	sc.busy[j.key()] = true
	j.logPath = b.Paths.BuildLog(j.kernel, j.m.Name, j.m.Version)
	j.log, j.logErr = openLog(b.Paths, j.logPath)
	if j.logErr != nil {
		// A full or read-only /var/log must not stop the build itself.
		j.rep.Warnf("cannot keep the build log of %s for %s: %v", j.mv(), report.Name(j.kernel), j.logErr)
	}
	fmt.Fprintf(j.log, "dkms-guard: %s for %s (%s)\n", j.mv(), j.kernel, b.Now().UTC().Format(time.RFC3339))
	sc.started++
	b.Report.Notef("[%d/%d] building %s for %s", sc.started, len(sc.jobs), j.mv(), report.Name(j.kernel))
	j.installLeft = !alone
	if par.Builds <= 1 {
		sc.done <- j
		return
	}
	go sc.buildStep(ctx, j, alone)
}

// buildStep runs j's `dkms build` (or, alone, its `dkms install` with every
// CPU) in its own goroutine, and hands j back on done whatever happens.
func (sc *scheduler) buildStep(ctx context.Context, j *job, alone bool) {
	b, par := sc.s.b, sc.s.Parallel
	defer func() { sc.done <- j }()
	// Everything in guarded, the note included: a panic anywhere in this
	// goroutine would otherwise crash the process inside dpkg.
	j.buildErr = guarded(j.log, func() error {
		// At once: its process group id may be anyone's from now on.
		defer sc.noter(j, "")(0)
		if alone {
			fmt.Fprintf(j.log, "dkms-guard: dkms install -m %s -v %s -k %s -j %d\n", j.m.Name, j.m.Version, j.kernel, par.Solo)
			return b.DKMS.Install(ctx, j.m.Name, j.m.Version, j.kernel, sc.s.NoDepmod, par.Solo, j.log, sc.noter(j, "install"))
		}
		fmt.Fprintf(j.log, "dkms-guard: dkms build -m %s -v %s -k %s -j %d\n", j.m.Name, j.m.Version, j.kernel, par.MakeJobs)
		return b.DKMS.Build(ctx, j.m.Name, j.m.Version, j.kernel, par.MakeJobs, j.log, sc.noter(j, "build"))
	})
}

// guarded runs fn, and makes a panic in it (dkms-guard's own bug) the
// build's error, its stack in the build log: the hooks never fail apt, and
// a panic in a build's goroutine is past app's guard.
func guarded(log io.Writer, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(log, "dkms-guard: panic: %v\n%s", p, debug.Stack())
			err = fmt.Errorf("dkms-guard bug, please report it: panic: %v", p)
		}
	}()
	return fn()
}

// built installs what j's build step built (or, one build at a time,
// builds and installs it) and records the outcome.
func (sc *scheduler) built(ctx context.Context, j *job) {
	s, b := sc.s, sc.s.b
	sc.running--
	sc.s.noteErr.say(s.b.Report)
	err := j.buildErr
	if err == nil && j.installLeft {
		if ctx.Err() != nil {
			// The time is up: installing would only be killed. One at a
			// time, the install was to build it too: nothing was built.
			why := "dkms-guard was interrupted after building it, before installing it"
			if s.Parallel.Builds <= 1 {
				why = "dkms-guard was interrupted before building it"
			}
			j.log.close()
			delete(sc.busy, j.key())
			sc.finish(ctx, j, s.skip(j.rep, j.m, j.kernel, interrupted(ctx, why)))
			return
		}
		fmt.Fprintf(j.log, "dkms-guard: dkms install -m %s -v %s -k %s\n", j.m.Name, j.m.Version, j.kernel)
		err = guarded(j.log, func() error {
			defer sc.noter(j, "")(0)
			return b.DKMS.Install(ctx, j.m.Name, j.m.Version, j.kernel, s.NoDepmod, 0, j.log, sc.noter(j, "install"))
		})
	}
	if !sc.signed && (err == nil || signingKey(b.Paths)) {
		// The key exists now, or a build went through without making
		// one: dkms does not sign here. A build that failed may have
		// died before dkms's signing step: the next one still runs alone.
		sc.signed = true
	}
	r := sc.outcome(j, err)
	delete(sc.busy, j.key())
	sc.finish(ctx, j, r)
}

// outcome is j's result after its dkms runs ended with err, said to its
// reporter, its build log closed.
func (sc *scheduler) outcome(j *job, err error) state.Result {
	s, b := sc.s, sc.s.b
	var xe *program.ExitError
	errors.As(err, &xe)
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
		j.k.depmod = j.k.depmod || s.NoDepmod
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
			if xe.TimedOut {
				r.Cause = state.CauseTimedOut
			}
		} else if errors.Is(err, program.ErrNotFound) {
			r.Reason = "dkms " + program.ErrNotFound.Error()
		}
		// Before the module version is free again: its next build
		// replaces build/make.log.
		appendDKMSLogs(j.log, b.Paths.DKMSTree(), j.m, j.kernel, b.Arch)
		logged()
		complain(j.rep, r.Severity, "%s: build failed for %s (%s)%s", j.mv(), report.Name(j.kernel), r.Reason, LogNote(r))
	}
	return r
}

// dependsWhy begins the reason of every module left unbuilt because of its
// BUILD_DEPENDS.
const dependsWhy = "its BUILD_DEPENDS "

// skipDepends is the result of j left unbuilt because of its
// BUILD_DEPENDS (why: "form a cycle", "core was not installed").
func (sc *scheduler) skipDepends(j *job, why string) state.Result {
	r := sc.s.skip(j.rep, j.m, j.kernel, dependsWhy+why)
	r.Cause = state.CauseBuildDepends
	return r
}

// SkippedForDepends tells whether r is a module left unbuilt because of
// its BUILD_DEPENDS (one failed, is missing, or they form a cycle).
func SkippedForDepends(r state.Result) bool {
	return r.Outcome == state.Skipped && r.Cause == state.CauseBuildDepends
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

// finish records j's result, once; after its kernel's last job, depmod
// runs for the kernel once if its installs left that to dkms-guard.
func (sc *scheduler) finish(ctx context.Context, j *job, r state.Result) {
	if j.state == finished {
		// Every job finishes exactly once: a second time would count
		// its kernel's jobs below zero, and depmod would never run.
		sc.s.b.Report.Errorf("BUG: dkms-guard finished %s for %s twice (%s, then %s); please report it",
			j.mv(), report.Name(j.kernel), j.r.Outcome, r.Outcome)
		return
	}
	j.state, j.r = finished, r
	k := j.k
	if r.Outcome == state.Installed {
		k.installed[j.m.Name] = true
	}
	k.left--
	if k.left == 0 && k.depmod {
		k.depmod = false
		sc.runDepmod(ctx, k)
	}
	// Said before the next build's progress line, as one at a time would.
	sc.flush()
}

// runDepmod runs depmod once for k, after its last install.
func (sc *scheduler) runDepmod(ctx context.Context, k *kernelJobs) {
	// Even when interrupted: the modules are installed, and modules.dep
	// must say so.
	var out program.Capped
	out.Max = 4096
	err := sc.s.b.DKMS.Depmod(context.WithoutCancel(ctx), k.name, &out)
	if err == nil {
		return
	}
	// dkms itself rolls a module back when depmod fails (exit 6): here the
	// modules stay installed, and are reported failed until depmod works.
	sev := state.SevWarning
	var names []string
	for _, o := range sc.jobs {
		if o.k == k && o.state == finished && o.r.Outcome == state.Installed {
			o.r.Outcome, o.r.Cause = state.Failed, state.CauseDepmod
			o.r.Severity = sc.s.severity(o.m.Name)
			o.r.Reason = fmt.Sprintf("installed, but depmod -a %s failed (%v)", k.name, err)
			if o.r.Severity == state.SevError {
				sev = state.SevError
			}
			names = append(names, o.mv())
		}
	}
	complain(k.last.rep, sev, "depmod -a %s failed (%v) after installing %s: they may not load until it succeeds; run depmod -a %s%s",
		report.Name(k.name), err, strings.Join(names, ", "), report.Name(k.name), firstLine(out.String()))
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

// noter returns the callback that notes a running dkms in the build lock,
// so that a dkms-guard killed mid-build has its builds stopped by the
// next: its process group, identified by the leader's start time, the
// boot and the session (see identify).
func (sc *scheduler) noter(j *job, what string) func(pgid int) {
	return func(pgid int) {
		line := ""
		if pgid != 0 {
			line = noteOf(sc.s.b.host(), pgid, sc.s.bootID,
				fmt.Sprintf("dkms %s %s for %s", what, j.mv(), report.Name(j.kernel))).String()
		}
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if line == "" {
			delete(sc.notes, j.n)
		} else {
			sc.notes[j.n] = line
		}
		if sc.s.lock == nil {
			return
		}
		lines := make([]string, 0, len(sc.notes))
		for _, n := range slices.Sorted(maps.Keys(sc.notes)) {
			lines = append(lines, sc.notes[n])
		}
		if err := sc.s.lock.Note(strings.Join(lines, "\n")); err != nil {
			sc.s.noteErr.keep(err)
		}
	}
}
