package build

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

func TestShare(t *testing.T) {
	for _, c := range []struct {
		jobs, cpus int
		want       Parallelism
	}{
		{0, 1, Parallelism{1, 0, 0}},   // one CPU: as stock dkms
		{0, 2, Parallelism{2, 2, 2}},   // auto: a build per CPU, each -j1 and one for its serial steps
		{0, 16, Parallelism{4, 5, 16}}, // auto stops at four builds: 4 x 5, not 4 x 16
		{1, 16, Parallelism{1, 0, 0}},  // --jobs 1: dkms's own -j, as stock
		{3, 8, Parallelism{3, 4, 8}},
		{8, 2, Parallelism{8, 2, 2}},
		{0, 0, Parallelism{1, 0, 0}},
	} {
		if got := Share(c.jobs, c.cpus); got != c.want {
			t.Errorf("Share(%d, %d) = %+v, want %+v", c.jobs, c.cpus, got, c.want)
		}
	}
}

// barrier lets n builds in at once and tells a test whether they came
// together; it never hangs a test (the wait is a deadlock guard, not a
// timing assertion: the schedule is wrong if it is ever reached).
type barrier struct {
	mu     sync.Mutex
	n, in  int
	peak   int
	open   chan struct{}
	failed bool
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) enter() {
	b.mu.Lock()
	b.in++
	b.peak = max(b.peak, b.in)
	if b.in == b.n {
		close(b.open)
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(10 * time.Second):
		b.mu.Lock()
		b.failed = true
		b.mu.Unlock()
	}
}

var progressLine = regexp.MustCompile(`(?m)^N: dkms-guard: \[\d+/\d+\] building .*\n`)

// The same modules built one at a time and three at a time: the same
// results, the same messages in the same order (the progress lines
// aside), one depmod per kernel, and the builds really side by side.
func TestParallelMatchesSerial(t *testing.T) {
	confs := map[string]string{
		"app":  "AUTOINSTALL=yes\nBUILD_DEPENDS=core\n",
		"core": "AUTOINSTALL=yes\n",
		"bad":  "AUTOINSTALL=yes\n",
		"kid":  "AUTOINSTALL=yes\nBUILD_DEPENDS=bad\n",
		"excl": "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\n",
		"sev":  "AUTOINSTALL=yes\n",
		"zed":  "AUTOINSTALL=yes\n",
	}
	var parF *fakeDKMS // the side-by-side run's, for its hook
	run := func(p Parallelism, hook func(m, v, k string, started func(int))) ([]state.Result, string, *fakeDKMS) {
		b, f, out := setup(t, confs)
		if p.Builds > 1 {
			parF = f
		}
		b.Parallel, b.NoDepmod = p, true
		haveKey(t, b)
		f.hook = hook
		f.errs["bad"] = &program.ExitError{Code: 10}
		f.errs["sev"] = &program.ExitError{Code: 77}
		s := begin(t, b, Labels{By: "test"})
		batches := []Batch{{Kernel: "k1", Jobs: s.Pick("k1")}, {Kernel: "k2", Jobs: s.Pick("k2")}}
		return s.BuildAll(context.Background(), batches), out.String(), f
	}
	serialRS, serialOut, serialF := run(Parallelism{Builds: 1}, nil)
	// bad, core and sev for k1 start together (kid and app wait for them).
	bar := newBarrier(3)
	parRS, parOut, _ := run(Parallelism{Builds: 3, MakeJobs: 1}, func(m, v, k string, _ func(int)) {
		if m == "app" { // as dkms 3.2 does: exit 13 unless core is installed
			parF.mu.Lock()
			if !slices.Contains(parF.installs, "core "+k) {
				t.Errorf("app built for %s before core was installed", k)
			}
			parF.mu.Unlock()
		}
		select {
		case <-bar.open:
		default:
			bar.enter()
		}
	})
	if bar.failed || bar.peak < 3 {
		t.Errorf("builds did not run side by side (peak %d)", bar.peak)
	}
	norm := func(rs []state.Result) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.Kernel+" "+r.Module+" "+string(r.Outcome)+" "+r.Reason+" "+r.Log)
		}
		return strings.Join(s, "\n")
	}
	if a, b := norm(serialRS), norm(parRS); a != b {
		t.Errorf("results differ:\nserial:\n%s\nparallel:\n%s", a, b)
	}
	if a, b := progressLine.ReplaceAllString(serialOut, ""), progressLine.ReplaceAllString(parOut, ""); a != b {
		t.Errorf("messages differ:\nserial:\n%s\nparallel:\n%s", a, b)
	}
	if a, b := len(progressLine.FindAllString(serialOut, -1)), len(progressLine.FindAllString(parOut, -1)); a != b || a == 0 {
		t.Errorf("progress lines: %d one at a time, %d side by side", a, b)
	}
	for _, f := range []*fakeDKMS{serialF, parF} {
		if got := strings.Join(slices.Sorted(slices.Values(f.depmods)), " "); got != "k1 k2" {
			t.Errorf("depmod runs: %s", got)
		}
	}
	if len(serialF.builds) != 0 {
		t.Errorf("one at a time, dkms install builds, as stock: %v", serialF.builds)
	}
	want := "k1 app installed"
	if !strings.Contains(norm(parRS), want) || strings.Index(norm(parRS), "k1 core") > strings.Index(norm(parRS), "k1 app") {
		t.Errorf("results not in BUILD_DEPENDS order:\n%s", norm(parRS))
	}
}

// One module version is never built for two kernels at once: dkms builds
// every kernel's in the same M/V/build directory.
func TestParallelNeverSameVersionTwice(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	b.Parallel = Parallelism{Builds: 4, MakeJobs: 1}
	haveKey(t, b)
	var mu sync.Mutex
	busy := map[string]bool{}
	bar := newBarrier(2) // a and b for k1 come in together; a for k2 must not
	f.hook = func(m, v, k string, _ func(int)) {
		mu.Lock()
		if busy[m] {
			t.Errorf("%s/%s built for two kernels at once", m, v)
		}
		busy[m] = true
		mu.Unlock()
		if k == "k1" {
			bar.enter()
		}
		mu.Lock()
		busy[m] = false
		mu.Unlock()
	}
	s := begin(t, b, Labels{By: "test"})
	rs := s.BuildAll(context.Background(), []Batch{{"k1", s.Tree()}, {"k2", s.Tree()}})
	if bar.failed || outcomes(rs) != "a=installed b=installed a=installed b=installed" {
		t.Errorf("%s (barrier failed: %v)", outcomes(rs), bar.failed)
	}
}

// Without dkms's signing key, the first build runs alone (it creates the
// key, unlocked); the rest then run side by side.
func TestSigningKeyMadeByOneBuild(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n", "c": "AUTOINSTALL=yes\n"})
	b.Parallel = Parallelism{Builds: 3, MakeJobs: 1}
	var waits []int // builds running at each wait: the schedule's decisions
	b.idle = func(running int) { waits = append(waits, running) }
	bar := newBarrier(2)
	f.hook = func(m, _, _ string, _ func(int)) {
		if m != "a" {
			bar.enter()
			return
		}
		must(t, os.WriteFile(b.Paths.MOKKey(), []byte("key"), 0o600))
		must(t, os.WriteFile(b.Paths.MOKCert(), []byte("cert"), 0o644))
	}
	s := begin(t, b, Labels{By: "test"})
	s.Autoinstall(context.Background(), "k")
	if len(waits) == 0 || waits[0] != 1 {
		t.Errorf("builds running at each wait: %v; the first must run alone", waits)
	}
	if bar.failed {
		t.Error("b and c did not build side by side once the key existed")
	}
}

// Builds running side by side are each noted in the build lock, so that a
// killed dkms-guard's builds are all found; a note of several lines is
// read back line by line.
func TestLockNotesEveryBuild(t *testing.T) {
	b, f, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	b.Parallel = Parallelism{Builds: 2, MakeJobs: 1}
	haveKey(t, b)
	lock := filepath.Join(b.Paths.RunDir(), "build.lock")
	bar := newBarrier(2)
	var once sync.Once
	var note []byte
	f.hook = func(m, _, _ string, started func(int)) {
		started(map[string]int{"a": 999990, "b": 999991}[m])
		bar.enter()
		once.Do(func() { note, _ = os.ReadFile(lock) })
	}
	s := begin(t, b, Labels{By: "test"})
	s.Autoinstall(context.Background(), "k")
	after, _ := os.ReadFile(lock) // before End, which clears it anyway
	s.End()
	if len(after) != 0 {
		t.Errorf("lock note after the builds = %q", after)
	}
	want := "pgid 999990 start 0 boot \"\" session -1 dkms build a/1.0 for k\npgid 999991 start 0 boot \"\" session -1 dkms build b/1.0 for k\n"
	if string(note) != want {
		t.Errorf("lock note = %q, want %q", note, want)
	}
	// As a killed dkms-guard would have left it: both are reported.
	must(t, os.WriteFile(lock, []byte(want), 0o600))
	out.Reset()
	begin(t, b, Labels{By: "test"})
	if n := strings.Count(out.String(), "was cut short"); n != 2 {
		t.Errorf("leftover notes said %d times:\n%s", n, out)
	}
}

// A depmod that fails leaves the kernel's new modules failed, said once.
func TestDepmodFailure(t *testing.T) {
	b, f, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	b.NoDepmod = true
	f.depErr = &program.ExitError{Code: 1}
	rs := begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	if outcomes(rs) != "a=failed b=failed" || rs[0].Cause != state.CauseDepmod || !strings.Contains(rs[0].Reason, "depmod -a k failed (exit 1)") {
		t.Errorf("%+v", rs)
	}
	if n := strings.Count(out.String(), "W: dkms-guard: depmod -a k failed (exit 1) after installing a/1.0, b/1.0"); n != 1 {
		t.Errorf("output:\n%s", out)
	}
}

// Without --no-depmod in dkms, dkms runs depmod itself: none here.
func TestNoDepmodUnknown(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	if len(f.depmods) != 0 {
		t.Errorf("depmod ran: %v", f.depmods)
	}
}

// A later module's lines wait for an earlier one still building.
func TestMessagesInJobOrder(t *testing.T) {
	b, f, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	b.Parallel = Parallelism{Builds: 2, MakeJobs: 1}
	haveKey(t, b)
	bDone := make(chan struct{})
	f.hook = func(m, _, _ string, _ func(int)) {
		if m == "b" {
			close(bDone)
			return
		}
		select { // a ends after b; were they not side by side, b never starts
		case <-bDone:
		case <-time.After(10 * time.Second):
			t.Error("b did not build while a did")
		}
	}
	begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	got := progressLine.ReplaceAllString(out.String(), "")
	if got != "N: dkms-guard: a/1.0: installed for k\nN: dkms-guard: b/1.0: installed for k\n" {
		t.Errorf("output:\n%s", out)
	}
}

// haveKey makes dkms's signing key, which lets builds run side by side
// from the first.
func haveKey(t *testing.T, b *Builder) {
	must(t, os.WriteFile(b.Paths.MOKKey(), nil, 0o600))
	must(t, os.WriteFile(b.Paths.MOKCert(), nil, 0o644))
}

// A first build that fails may have died before dkms made the signing
// key: the next build still runs alone.
func TestSigningKeyAfterFailedFirstBuild(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n", "c": "AUTOINSTALL=yes\n"})
	b.Parallel = Parallelism{Builds: 3, MakeJobs: 1}
	f.errs["a"] = &program.ExitError{Code: 1}
	var waits []int // builds running at each wait: the schedule's decisions
	b.idle = func(running int) { waits = append(waits, running) }
	f.hook = func(m, _, _ string, _ func(int)) {
		if m == "b" { // the second build makes the key
			must(t, os.WriteFile(b.Paths.MOKKey(), nil, 0o600))
			must(t, os.WriteFile(b.Paths.MOKCert(), nil, 0o644))
		}
	}
	begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	if !slices.Equal(waits, []int{1, 1, 1}) {
		t.Errorf("builds running at each wait: %v, want each alone before the key existed", waits)
	}
}

// Interrupted while builds run side by side: what was built is not
// installed, what waited is not built, each said with its reason; depmod
// still runs for what was installed. (A build running when the signal
// comes is killed with its process group: program's tests.)
func TestParallelInterrupted(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n", "c": "AUTOINSTALL=yes\n", "d": "AUTOINSTALL=yes\n"})
	b.Parallel, b.NoDepmod = Parallelism{Builds: 2, MakeJobs: 1}, true
	haveKey(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	bDone := make(chan struct{})
	f.hook = func(m, _, _ string, _ func(int)) {
		switch m {
		case "a":
			<-bDone // b is installed, c builds: then the signal
			cancel()
		case "c":
			<-ctx.Done()
		}
	}
	f.afterInstall = func(m string) {
		if m == "b" {
			close(bDone)
		}
	}
	rs := begin(t, b, Labels{By: "test"}).Autoinstall(ctx, "k")
	if got := outcomes(rs); got != "a=skipped b=installed c=skipped d=skipped" {
		t.Errorf("outcomes %s", got)
	}
	if !strings.Contains(rs[0].Reason, "after building it, before installing it") || !strings.Contains(rs[3].Reason, "before building it") {
		t.Errorf("reasons %q, %q", rs[0].Reason, rs[3].Reason)
	}
	if strings.Join(f.depmods, " ") != "k" {
		t.Errorf("depmod: %v", f.depmods)
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		p     Parallelism
		total int
		want  Parallelism
	}{
		{Parallelism{4, 4, 16}, 8, Parallelism{4, 2, 8}},
		{Parallelism{4, 4, 16}, 2, Parallelism{2, 1, 2}},
		{Parallelism{2, 2, 2}, 1, Parallelism{1, 0, 0}}, // parallel_jobs=1: as stock
		{Parallelism{2, 2, 2}, 16, Parallelism{2, 2, 2}},
		{Parallelism{1, 0, 0}, 3, Parallelism{1, 0, 0}},
	} {
		if got := c.p.Within(c.total); got != c.want {
			t.Errorf("%+v.Within(%d) = %+v, want %+v", c.p, c.total, got, c.want)
		}
	}
}

// Side by side, the biggest source starts first: a long build started
// last would run alone at the end. One at a time, job order stays.
func TestBiggestSourceFirst(t *testing.T) {
	for _, p := range []Parallelism{{Builds: 2, MakeJobs: 1}, {Builds: 1}} {
		b, _, out := setup(t, map[string]string{"abc": "AUTOINSTALL=yes\n", "big": "AUTOINSTALL=yes\n", "xyz": "AUTOINSTALL=yes\n"})
		b.Parallel = p
		haveKey(t, b)
		must(t, os.WriteFile(filepath.Join(b.Paths.Root, "usr/src/big-1.0/big.c"), make([]byte, 1<<16), 0o644))
		begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
		first := progressLine.FindString(out.String())
		want := "big/1.0"
		if p.Builds == 1 {
			want = "abc/1.0"
		}
		if !strings.Contains(first, "[1/3] building "+want) {
			t.Errorf("%+v: first progress line %q", p, first)
		}
	}
}

// A build that will run alone gets the whole machine in one dkms install
// (build and install): one module for three kernels, one after another.
func TestSoloBuildsInstallAtOnce(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	b.Parallel, b.NoDepmod = Parallelism{Builds: 2, MakeJobs: 2, Solo: 2}, true
	haveKey(t, b)
	s := begin(t, b, Labels{By: "test"})
	rs := s.BuildAll(context.Background(), []Batch{{"k1", s.Tree()}, {"k2", s.Tree()}, {"k3", s.Tree()}})
	if outcomes(rs) != "a=installed a=installed a=installed" || len(f.builds) != 0 || len(f.installs) != 3 {
		t.Errorf("%s; build steps %v, installs %v", outcomes(rs), f.builds, f.installs)
	}
	if got := strings.Join(slices.Sorted(slices.Values(f.depmods)), " "); got != "k1 k2 k3" {
		t.Errorf("depmod: %s", got)
	}
}
