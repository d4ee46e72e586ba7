package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// fakeDKMS records calls and answers per module: errs[m] is how m's build
// ends (in the build step, or in install when there is none). hook, if
// set, runs in each build (a build step, or an install that builds), in
// the build's goroutine.
type fakeDKMS struct {
	mu       sync.Mutex
	calls    []string // m/v per install
	installs []string // m k per install
	builds   []string // m/v k per build step
	depmods  []string
	built    map[string]bool
	errs     map[string]error
	depErr   error
	hook     func(m, v, k string, started func(int))
	// afterInstall, if set, runs at the end of each install.
	afterInstall func(m string)
}

func (f *fakeDKMS) Build(_ context.Context, m, v, k string, _ int, out io.Writer, started func(int)) error {
	f.mu.Lock()
	f.builds = append(f.builds, m+"/"+v+" "+k)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(m, v, k, started)
	}
	fmt.Fprintln(out, "building", m)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.built == nil {
		f.built = map[string]bool{}
	}
	f.built[m+"/"+v+"/"+k] = true
	return f.errs[m]
}

func (f *fakeDKMS) Install(_ context.Context, m, v, k string, _ bool, _ int, out io.Writer, started func(int)) error {
	f.mu.Lock()
	built, hook, after := f.built[m+"/"+v+"/"+k], f.hook, f.afterInstall
	f.mu.Unlock()
	if !built && hook != nil {
		hook(m, v, k, started)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if after != nil {
		defer after(m)
	}
	if !built {
		fmt.Fprintln(out, "building", m)
		if err := f.errs[m]; err != nil {
			f.calls = append(f.calls, m+"/"+v)
			return err
		}
	}
	f.calls = append(f.calls, m+"/"+v)
	f.installs = append(f.installs, m+" "+k)
	return nil
}

func (f *fakeDKMS) Depmod(_ context.Context, k string, _ io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.depmods = append(f.depmods, k)
	return f.depErr
}

func setup(t *testing.T, confs map[string]string) (*Builder, *fakeDKMS, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	p := paths.New(root)
	for name, conf := range confs {
		src := filepath.Join(root, "usr/src", name+"-1.0")
		must(t, os.MkdirAll(src, 0o755))
		must(t, os.WriteFile(filepath.Join(src, "dkms.conf"), []byte(conf), 0o644))
		must(t, os.MkdirAll(filepath.Join(p.DKMSTree(), name, "1.0"), 0o755))
		must(t, os.Symlink(src, filepath.Join(p.DKMSTree(), name, "1.0", "source")))
	}
	var out bytes.Buffer
	f := &fakeDKMS{errs: map[string]error{}}
	b := &Builder{Paths: p, DKMS: f, Report: report.New(&out), Arch: "x86_64",
		Now: func() time.Time { return time.Unix(0, 0) }}
	return b, f, &out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// begin starts a session and ends it with the test.
// Autoinstall builds what dkms's autoinstall would for kernel (the kernel
// hook adds its own filter between Pick and Build).
func (s *Session) Autoinstall(ctx context.Context, kernel string) []state.Result {
	return s.Build(ctx, kernel, s.Pick(kernel))
}

func begin(t *testing.T, b *Builder, l Labels) *Session {
	t.Helper()
	s, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Labels = l
	t.Cleanup(s.End)
	return s
}

func outcomes(rs []state.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Module+"="+string(r.Outcome))
	}
	return strings.Join(s, " ")
}

func TestBuildDependsOrder(t *testing.T) {
	b, f, _ := setup(t, map[string]string{
		"app":  "AUTOINSTALL=yes\nBUILD_DEPENDS=\"core\"\n",
		"core": "AUTOINSTALL=yes\n",
		"lib":  "AUTOINSTALL=yes\nBUILD_DEPENDS=\"app\"\n",
		"off":  "AUTOINSTALL=\n",
	})
	rs := begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "6.1.0-56-amd64")
	if got := strings.Join(f.calls, " "); got != "core/1.0 app/1.0 lib/1.0" {
		t.Errorf("calls = %s", got)
	}
	if got := outcomes(rs); got != "core=installed app=installed lib=installed" {
		t.Errorf("outcomes = %s", got)
	}
}

func TestClassification(t *testing.T) {
	b, f, out := setup(t, map[string]string{
		"bad":     "AUTOINSTALL=yes\n",
		"child":   "AUTOINSTALL=yes\nBUILD_DEPENDS=bad\n",
		"excl":    "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\n",
		"seventy": "AUTOINSTALL=yes\n",
		"slow":    "AUTOINSTALL=yes\n",
		"cyc1":    "AUTOINSTALL=yes\nBUILD_DEPENDS=cyc2\n",
		"cyc2":    "AUTOINSTALL=yes\nBUILD_DEPENDS=cyc1\n",
	})
	f.errs["bad"] = &program.ExitError{Code: 10}
	f.errs["seventy"] = &program.ExitError{Code: 77}
	f.errs["slow"] = &program.ExitError{Code: -1, TimedOut: true, Timeout: time.Minute}
	sev := func(m string) state.Severity {
		if m == "bad" {
			return state.SevError
		}
		return state.SevNone
	}
	rs := begin(t, b, Labels{By: "test", Severity: sev}).Autoinstall(context.Background(), "6.1.0-56-amd64")
	got := map[string]state.Result{}
	for _, r := range rs {
		got[r.Module] = r
	}
	if r := got["bad"]; r.Outcome != state.Failed || r.Exit != 10 || r.Severity != state.SevError || r.Log != "/var/log/dkms-guard/6.1.0-56-amd64/bad-1.0.log" {
		t.Errorf("bad = %+v", r)
	}
	if r := got["child"]; r.Outcome != state.Skipped || !strings.Contains(r.Reason, "bad was not installed") || r.Severity != state.SevWarning {
		t.Errorf("child = %+v", r)
	}
	if r := got["excl"]; r.Outcome != state.Unsupported {
		t.Errorf("excl = %+v", r)
	}
	if r := got["seventy"]; r.Outcome != state.Unsupported || r.Exit != 77 {
		t.Errorf("seventy = %+v", r)
	}
	if r := got["slow"]; r.Outcome != state.Failed || r.Cause != state.CauseTimedOut || !strings.Contains(r.Reason, "timed out after 1m0s") {
		t.Errorf("slow = %+v", r)
	}
	for _, c := range []string{"cyc1", "cyc2"} {
		if r := got[c]; r.Outcome != state.Skipped || !strings.Contains(r.Reason, "cycle") {
			t.Errorf("%s = %+v", c, r)
		}
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "child/") || strings.HasPrefix(c, "excl/") || strings.HasPrefix(c, "cyc") {
			t.Errorf("%s was built", c)
		}
	}
	if !strings.Contains(out.String(), "E: dkms-guard: bad/1.0: build failed for 6.1.0-56-amd64 (exit 10), see /var/log/dkms-guard/6.1.0-56-amd64/bad-1.0.log") {
		t.Errorf("output:\n%s", out)
	}
	log, err := os.ReadFile(filepath.Join(b.Paths.Root, "var/log/dkms-guard/6.1.0-56-amd64/bad-1.0.log"))
	if err != nil || !strings.Contains(string(log), "building bad") {
		t.Errorf("log = %q", log)
	}
}

// A cancelled context (SIGTERM to dkms-guard) stops before the next build.
func TestInterrupted(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	s := begin(t, b, Labels{By: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rs := s.Autoinstall(ctx, "k")
	if len(f.calls) != 0 || len(rs) != 1 || rs[0].Outcome != state.Skipped {
		t.Errorf("calls %v results %+v", f.calls, rs)
	}
}

// dkms may leave O_APPEND on the log's file description (shared with it as
// stdout); copying make.log must still work (copy_file_range would EBADF).
func TestAppendDKMSLogsToAppendOnlyLog(t *testing.T) {
	dir := t.TempDir()
	j := dkms.Module{Name: "m", Version: "1.0"}
	must(t, os.MkdirAll(filepath.Join(dir, "m/1.0/build"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "m/1.0/build/make.log"), []byte("error: it broke\n"), 0o644))
	logName := filepath.Join(dir, "out.log")
	f, err := os.OpenFile(logName, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// As a child would: behind the back of Go's *os.File.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_SETFL, syscall.O_WRONLY|syscall.O_APPEND); errno != 0 {
		t.Fatal(errno)
	}
	appendDKMSLogs(f, dir, j, "k", "x86_64")
	f.Close()
	data, err := os.ReadFile(logName)
	if err != nil || !strings.Contains(string(data), "error: it broke") {
		t.Errorf("log = %q", data)
	}
}

// lockChecker is a Tool that asserts, at every build, that some
// other open file description holds the build lock: what a second
// dkms-guard process would see (issue 5, defect 1).
type lockChecker struct {
	t    *testing.T
	lock string
	n    int
}

func (l *lockChecker) Build(context.Context, string, string, string, int, io.Writer, func(int)) error {
	return nil
}
func (l *lockChecker) Depmod(context.Context, string, io.Writer) error { return nil }

func (l *lockChecker) Install(context.Context, string, string, string, bool, int, io.Writer, func(int)) error {
	l.n++
	f, err := os.Open(l.lock)
	if err != nil {
		l.t.Errorf("build lock file: %v", err)
		return nil
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		l.t.Error("dkms ran without the build lock held")
	}
	return nil
}

func TestBuildsHoldTheBuildLock(t *testing.T) {
	b, _, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n", "b": "AUTOINSTALL=yes\n"})
	lc := &lockChecker{t: t, lock: filepath.Join(b.Paths.RunDir(), "build.lock")}
	b.DKMS = lc
	s := begin(t, b, Labels{By: "test"})
	s.Autoinstall(context.Background(), "k")
	s.Build(context.Background(), "k2", s.Tree())
	if lc.n != 4 {
		t.Errorf("%d builds, want 4", lc.n)
	}
	s.End()
	// Once the session ended the lock is free again.
	f, err := os.Open(lc.lock)
	must(t, err)
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("lock still held after End: %v", err)
	}
}

// A dkms.conf whose AUTOINSTALL depends on the machine is built (dkms
// decides), with a note; a plain AUTOINSTALL="" is not.
func TestPickLeavesUnknownToDKMS(t *testing.T) {
	b, f, out := setup(t, map[string]string{
		"cond": "AUTOINSTALL=yes\nif [ \"$(uname -m)\" = s390x ]; then AUTOINSTALL=; fi\n",
		"off":  "AUTOINSTALL=\n",
	})
	begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	if got := strings.Join(f.calls, " "); got != "cond/1.0" {
		t.Errorf("calls = %s", got)
	}
	if !strings.Contains(out.String(), "N: dkms-guard: cond/1.0: building it for k and letting dkms decide: dkms.conf") {
		t.Errorf("output:\n%s", out)
	}
}

// A thousand modules, one session: all built, in order, nothing lost.
func TestManyModules(t *testing.T) {
	confs := map[string]string{}
	for i := 0; i < 1000; i++ {
		confs[fmt.Sprintf("m%04d", i)] = "AUTOINSTALL=yes\n"
	}
	b, f, _ := setup(t, confs)
	rs := begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	if len(rs) != 1000 || len(f.calls) != 1000 || f.calls[0] != "m0000/1.0" || f.calls[999] != "m0999/1.0" {
		t.Fatalf("%d results, %d builds", len(rs), len(f.calls))
	}
	for _, r := range rs {
		if r.Outcome != state.Installed {
			t.Fatalf("%+v", r)
		}
	}
}

// A kept build put back in place of a newer version does not count as
// installed: autoinstall tries the newest version again. Any other
// installed version, or a kept build that is the newest, still does.
func TestPickRetriesNewestOverStandIn(t *testing.T) {
	b, f, _ := setup(t, map[string]string{"wifi": "AUTOINSTALL=yes\n", "hello": "AUTOINSTALL=yes\n", "zfs": "AUTOINSTALL=yes\n"})
	tree := b.Paths.DKMSTree()
	for _, name := range []string{"wifi", "hello"} {
		src := filepath.Join(b.Paths.SourceTree(), name+"-2.0")
		must(t, os.MkdirAll(src, 0o755))
		must(t, os.WriteFile(filepath.Join(src, "dkms.conf"), []byte("AUTOINSTALL=yes\n"), 0o644))
		must(t, os.MkdirAll(filepath.Join(tree, name, "2.0"), 0o755))
		must(t, os.Symlink(src, filepath.Join(tree, name, "2.0", "source")))
	}
	// 1.0 of each is installed for k.
	for _, name := range []string{"wifi", "hello", "zfs"} {
		must(t, os.MkdirAll(filepath.Join(tree, name, "1.0", "k", "x86_64"), 0o755))
		must(t, os.Symlink("1.0/k/x86_64", filepath.Join(tree, name, "kernel-k-x86_64")))
	}
	st, err := state.Open(b.Paths, true, b.Report)
	must(t, err)
	kept := state.Kept{Schema: state.Schema, Builds: []state.KeptBuild{
		{Module: "wifi", Version: "1.0", Kernel: "k", PutBack: time.Unix(1, 0)},
		{Module: "zfs", Version: "1.0", Kernel: "k", PutBack: time.Unix(1, 0)}, // the newest: nothing to retry
		{Module: "hello", Version: "1.0", Kernel: "k"},                         // kept, not put back
	}}
	must(t, st.Save(state.KeptFile, &kept))
	st.Close()
	begin(t, b, Labels{By: "test"}).Autoinstall(context.Background(), "k")
	if got := strings.Join(f.calls, " "); got != "wifi/2.0" {
		t.Errorf("calls = %q, want wifi/2.0 only", got)
	}
}
