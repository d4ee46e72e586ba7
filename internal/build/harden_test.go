package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// A panic in a build, in its own goroutine (side by side) or in the
// schedule's (one at a time), is that build's failure, named a
// dkms-guard bug; the other builds go on and BuildAll returns.
func TestBuildPanicIsAFailure(t *testing.T) {
	for _, p := range []Parallelism{{Builds: 2, MakeJobs: 1}, {Builds: 1}} {
		b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "boom": "AUTOINSTALL=yes\n"})
		b.Parallel = p
		haveKey(t, b)
		f.hook = func(m, _, _ string, _ func(int)) {
			if m == "boom" {
				panic("injected")
			}
		}
		rs := begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
		if outcomes(rs) != "a=installed boom=failed" || !strings.Contains(rs[1].Reason, "dkms-guard bug") || !strings.Contains(rs[1].Reason, "injected") {
			t.Errorf("%+v: %s %q", p, outcomes(rs), rs[len(rs)-1].Reason)
		}
	}
}

// The same kernel twice, or the same module twice for a kernel, is built
// once (rebuild --kernel K --kernel K).
func TestDuplicateJobsBuildOnce(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	b.NoDepmod = true
	s := begin(t, b, Labels{By: "test"})
	tree := s.Tree()
	rs := s.BuildAll(context.Background(), []Batch{{"k", tree}, {"k", append(slices.Clone(tree), tree[0])}})
	if outcomes(rs) != "a=installed b=installed" || strings.Join(f.installs, ",") != "a k,b k" || strings.Join(f.depmods, ",") != "k" {
		t.Errorf("%s; installs %v, depmods %v", outcomes(rs), f.installs, f.depmods)
	}
}

// With a BUILD_DEPENDS cycle in a kernel named twice, every job is
// finished once and depmod still runs after the kernel's installs.
func TestDuplicateCycleStillDepmods(t *testing.T) {
	b, f, out := setup(t, map[string]string{
		"a": "AUTOINSTALL=yes\n",
		"x": "AUTOINSTALL=yes\nBUILD_DEPENDS=y\n",
		"y": "AUTOINSTALL=yes\nBUILD_DEPENDS=x\n",
	})
	b.NoDepmod = true
	s := begin(t, b, Labels{By: "test"})
	rs := s.BuildAll(context.Background(), []Batch{{"k", s.Tree()}, {"k", s.Tree()}})
	if outcomes(rs) != "a=installed x=skipped y=skipped" || strings.Join(f.depmods, ",") != "k" {
		t.Errorf("%s; depmods %v\n%s", outcomes(rs), f.depmods, out)
	}
	if strings.Contains(out.String(), "BUG") {
		t.Errorf("output:\n%s", out)
	}
	if !SkippedForDepends(rs[1]) || rs[1].Cause != state.CauseBuildDepends || SkippedForDepends(rs[0]) {
		t.Errorf("causes: %+v", rs)
	}
}

// A job finished twice is a BUG: line, and the kernel's count of jobs
// left never goes below zero (depmod after the last install still runs).
func TestFinishTwiceIsABug(t *testing.T) {
	b, f, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	b.NoDepmod = true
	s := begin(t, b, Labels{By: "test"})
	sc := newScheduler(s, dedupe([]Batch{{"k", s.Tree()}}))
	a := sc.jobs[0]
	sc.finish(context.Background(), a, s.skip(a.rep, a.m, "k", "test"))
	sc.finish(context.Background(), a, s.skip(a.rep, a.m, "k", "test"))
	if !strings.Contains(out.String(), "BUG: ") {
		t.Errorf("no BUG line:\n%s", out)
	}
	if kq := sc.kernels["k"]; kq.left != 1 {
		t.Errorf("jobs left for k: %d", kq.left)
	}
	_ = f
}

// A dkms.conf that cannot be read leaves the decision to dkms: the module
// is built, with an N: line saying why.
func TestUnreadableConfBuildsWithNote(t *testing.T) {
	b, f, out := setup(t, map[string]string{"big": "AUTOINSTALL=yes\n"})
	conf := filepath.Join(b.Paths.Root, "usr/src/big-1.0/dkms.conf")
	must(t, os.WriteFile(conf, []byte("# "+strings.Repeat("x", 2<<20)+"\n"), 0o644))
	s := begin(t, b, Labels{By: "test"})
	rs := s.Build(context.Background(), "k", []dkms.Module{s.Tree()[0]})
	if outcomes(rs) != "big=installed" || len(f.installs) != 1 {
		t.Errorf("%s", outcomes(rs))
	}
	if !strings.Contains(out.String(), "N: dkms-guard: big/1.0: building it for k and letting dkms decide: ") {
		t.Errorf("output:\n%s", out)
	}
}

// realProc lets b read the real /proc (and boot id) under its fake root.
func realProc(t *testing.T, b *Builder) {
	must(t, os.Symlink("/proc", filepath.Join(b.Paths.Root, "proc")))
}

// An unrelated process group whose id a lock note names (the id reused
// after a reboot or a long gap: another start time or boot id) is not
// killed, nor said to be stopped.
func TestLeftoverNoteReusedGroupNotKilled(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("no boot id")
	}
	for _, c := range []struct{ name, note string }{
		{"start", "pgid %d start %d boot %q dkms build a/1.0 for k"},
		{"boot", "pgid %d start %d boot %q dkms build a/1.0 for k"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, _, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
			realProc(t, b)
			cmd := exec.Command("setsid", "sleep", "60")
			must(t, cmd.Start())
			pid := cmd.Process.Pid
			leads(t, pid)
			start := procStart(t, pid)
			bootID := strings.TrimSpace(string(boot))
			if c.name == "start" {
				start++
			} else {
				bootID = "another-boot"
			}
			must(t, os.MkdirAll(b.Paths.RunDir(), 0o700))
			must(t, os.WriteFile(filepath.Join(b.Paths.RunDir(), "build.lock"), []byte(sprintf(c.note, pid, start, bootID)+"\n"), 0o600))
			s, err := b.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s.End()
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("the unrelated group was killed: %v", cmd.ProcessState)
			}
			if strings.Contains(out.String(), "was stopped") || !strings.Contains(out.String(), "was cut short") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

// A leftover build that is what the note says (same process group, start
// time and boot) is stopped.
func TestLeftoverNoteOwnGroupKilled(t *testing.T) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("no boot id")
	}
	b, _, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	realProc(t, b)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	pid := cmd.Process.Pid
	st, err := host.Host{Paths: paths.New("/")}.ReadStat(pid)
	must(t, err)
	note := sprintf("pgid %d start %d boot %q session %d dkms build a/1.0 for k", pid, st.Start, strings.TrimSpace(string(boot)), st.Session)
	must(t, os.MkdirAll(b.Paths.RunDir(), 0o700))
	must(t, os.WriteFile(filepath.Join(b.Paths.RunDir(), "build.lock"), []byte(note+"\n"), 0o600))
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.End()
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the leftover build was not killed: %v", cmd.ProcessState)
	}
	if !strings.Contains(out.String(), "was stopped") {
		t.Errorf("output:\n%s", out)
	}
}

// A leftover group of zombies, as in a container whose pid 1 reaps
// nothing, has stopped: said so at once, not "could not be stopped" after
// waiting 5 s for processes that are already dead.
func TestLeftoverZombiesStopped(t *testing.T) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip("no boot id")
	}
	b, _, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	realProc(t, b)
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	defer cmd.Wait()
	pid := cmd.Process.Pid
	h := host.Host{Paths: paths.New("/")}
	var st host.Stat
	for i := 0; i < 500 && !st.Dead(); i++ { // not waited for: a zombie once it exits
		time.Sleep(10 * time.Millisecond)
		st, err = h.ReadStat(pid)
		must(t, err)
	}
	if !st.Dead() {
		t.Fatalf("the process did not become a zombie: state %c", st.State)
	}
	note := sprintf("pgid %d start %d boot %q session %d dkms build a/1.0 for k", pid, st.Start, strings.TrimSpace(string(boot)), st.Session)
	must(t, os.MkdirAll(b.Paths.RunDir(), 0o700))
	must(t, os.WriteFile(filepath.Join(b.Paths.RunDir(), "build.lock"), []byte(note+"\n"), 0o600))
	s, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.End()
	if !strings.Contains(out.String(), "was stopped") || strings.Contains(out.String(), "could not") {
		t.Errorf("output:\n%s", out)
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// leads waits until pid leads its own process group (setsid ran).
func leads(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		must(t, err)
		if f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:])); f[2] == strconv.Itoa(pid) {
			return
		}
	}
	t.Fatalf("%d never led its process group", pid)
}

// procStart is pid's start time, /proc/PID/stat field 22.
func procStart(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	n, err := strconv.ParseUint(f[19], 10, 64)
	must(t, err)
	return n
}

// failingNote is a build lock whose note cannot be written.
type failingNote struct{ calls int }

func (f *failingNote) Note(string) error {
	f.calls++
	return fmt.Errorf("writing the build lock's note: no space left on device")
}

// A note of the running builds that cannot be written is said once (W:):
// a dkms-guard killed now would leave its builds unseen.
func TestLockNoteErrorSaidOnce(t *testing.T) {
	b, f, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	f.hook = func(_, _, _ string, started func(int)) { started(999990) }
	s := begin(t, b, Labels{By: "test"})
	lock := &failingNote{}
	s.lock = lock
	s.Autoinstall(context.Background(), "k")
	if n := strings.Count(out.String(), "W: dkms-guard: cannot note the running builds in the build lock (writing the build lock's note: no space left on device)"); n != 1 || lock.calls < 2 {
		t.Errorf("said %d times (%d notes):\n%s", n, lock.calls, out)
	}
}

// panickyNote is a build lock whose note panics (dkms-guard's own bug)
// once a build has ended and its line is cleared.
type panickyNote struct{}

func (panickyNote) Note(text string) error {
	if text == "" {
		panic("injected in the note")
	}
	return nil
}

// A panic in a build's goroutine outside the dkms run itself (clearing its
// line in the build lock) is that build's failure, not a crash of the
// process (side by side) nor of the whole schedule (one at a time).
func TestBuildPanicAfterRun(t *testing.T) {
	for _, p := range []Parallelism{{Builds: 2, MakeJobs: 1}, {Builds: 1}} {
		b, _, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
		b.Parallel = p
		haveKey(t, b)
		s := begin(t, b, Labels{By: "test"})
		s.lock = panickyNote{}
		rs := s.Autoinstall(context.Background(), "k")
		if outcomes(rs) != "a=failed b=failed" || !strings.Contains(rs[0].Reason, "dkms-guard bug") {
			t.Errorf("%+v: %s %q", p, outcomes(rs), rs[0].Reason)
		}
	}
}

// One at a time, a job is built by its own `dkms install`: interrupted
// after its progress line but before that install, it was never built,
// and its reason must not say it was.
func TestSerialInterruptedBeforeInstallNotBuilt(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.idle = func(int) { cancel() }
	rs := begin(t, b, Labels{By: "test"}).Autoinstall(ctx, "k")
	if outcomes(rs) != "a=skipped" || rs[0].Reason != "dkms-guard was interrupted before building it" || len(f.builds)+len(f.installs) != 0 {
		t.Errorf("%s %q; builds %v installs %v", outcomes(rs), rs[0].Reason, f.builds, f.installs)
	}
}

// A leftover build identified in /proc that is gone by the time it is
// killed (ESRCH) ended by itself: said cut short, not "could not be
// stopped", which would send the administrator looking for it.
func TestLeftoverGoneBeforeKill(t *testing.T) {
	b, _, out := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	max, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Skip("no pid_max")
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(max)))
	must(t, err)
	pid := n + 1000 // no process group can have this id
	proc := filepath.Join(b.Paths.Root, "proc")
	must(t, os.MkdirAll(filepath.Join(proc, strconv.Itoa(pid)), 0o755))
	must(t, os.MkdirAll(filepath.Join(proc, "sys/kernel/random"), 0o755))
	must(t, os.WriteFile(filepath.Join(proc, "sys/kernel/random/boot_id"), []byte("b1\n"), 0o644))
	must(t, os.WriteFile(b.Paths.ProcStat(pid), []byte(sprintf("%d (cc1) S 1 %d 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n", pid, pid)), 0o644))
	must(t, os.MkdirAll(b.Paths.RunDir(), 0o700))
	must(t, os.WriteFile(filepath.Join(b.Paths.RunDir(), "build.lock"), []byte(sprintf("pgid %d start 777 boot \"b1\" dkms build a/1.0 for k\n", pid)), 0o600))
	s, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.End()
	if strings.Contains(out.String(), "could not be stopped") || !strings.Contains(out.String(), "was cut short") {
		t.Errorf("output:\n%s", out)
	}
}

// With the leader gone, the members left are the build's only if they are
// in the noted session: a group of the same id made since by setpgid in
// another session (no setsid: its session id is not the group's) is not.
// /proc is faked: the groups named are above any pid_max.
func TestIdentifyLeaderGone(t *testing.T) {
	h := host.Host{Paths: paths.New(t.TempDir())}
	stat := func(pid, pgrp, sid int, start uint64) {
		dir := filepath.Dir(h.Paths.ProcStat(pid))
		must(t, os.MkdirAll(dir, 0o755))
		fields := fmt.Sprintf("%d (cc1) S 1 %d %d 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, pgrp, sid, start)
		must(t, os.WriteFile(h.Paths.ProcStat(pid), []byte(fields), 0o644))
	}
	const pgid = 5000000
	stat(pgid+7, pgid, 4000000, 200) // a member, started after the leader; the leader is gone
	const outside = 5100000          // a group whose session is led from outside the pid namespace
	stat(outside+3, outside, 0, 200)
	for _, c := range []struct {
		name string
		l    leftover
		want groupIs
	}{
		{"same session", leftover{pgid: pgid, start: 100, boot: "b", session: 4000000}, groupLeft},
		{"another session", leftover{pgid: pgid, start: 100, boot: "b", session: 3999999}, groupGone},
		{"member older than the leader", leftover{pgid: pgid, start: 300, boot: "b", session: 4000000}, groupGone},
		{"session unknown", leftover{pgid: pgid, start: 100, boot: "b", session: -1}, groupUnknown},
		{"another boot", leftover{pgid: pgid, start: 100, boot: "a", session: 4000000}, groupGone},
		{"session 0, as in a container", leftover{pgid: outside, start: 100, boot: "b", session: 0}, groupLeft},
		{"session 0 noted, another session now", leftover{pgid: pgid, start: 100, boot: "b", session: 0}, groupGone},
	} {
		if got := identify(h, c.l, "b"); got != c.want {
			t.Errorf("%s: identify = %d, want %d", c.name, got, c.want)
		}
	}
}

// A note round-trips, and an older one without the session parses with
// the session unknown.
func TestParseLeftover(t *testing.T) {
	for _, sid := range []int{40, 0, -1} { // 0: a session led from outside this pid namespace
		l := leftover{pgid: 42, start: 7, boot: "b\"1", session: sid, what: "dkms build a/1.0 for k"}
		if got, ok := parseLeftover(l.String()); !ok || got != l {
			t.Errorf("round trip: %+v, %v", got, ok)
		}
	}
	got, ok := parseLeftover(`pgid 42 start 7 boot "b" dkms build a/1.0 for k`)
	if !ok || got.session != -1 || got.what != "dkms build a/1.0 for k" {
		t.Errorf("older note: %+v, %v", got, ok)
	}
}
