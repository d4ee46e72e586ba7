package kernelhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// The kernels of these tests.
const (
	k56 = "6.1.0-56-amd64"
	k47 = "6.1.0-47-amd64"
	k99 = "6.1.0-99-amd64" // no headers
)

// fakeDKMS is the fake of build's own tests (internal/build/build_test.go),
// cut down to what the hooks need: it records each install as "m/v k" and
// ends module m's as errs[m] says. A successful install links the module
// into the tree, as dkms does, so that the next Pick sees it installed.
type fakeDKMS struct {
	mu    sync.Mutex
	tree  string
	calls []string
	errs  map[string]error
}

func (f *fakeDKMS) Build(_ context.Context, m, v, k string, _ int, out io.Writer, _ func(int)) error {
	fmt.Fprintln(out, "building", m)
	return nil
}

func (f *fakeDKMS) Install(_ context.Context, m, v, k string, _ bool, _ int, out io.Writer, _ func(int)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, m+"/"+v+" "+k)
	fmt.Fprintln(out, "building", m)
	if err := f.errs[m]; err != nil {
		return err
	}
	return installed(f.tree, m, v, k)
}

func (f *fakeDKMS) Depmod(context.Context, string, io.Writer) error { return nil }

// made is what dkms was asked to install, in order.
func (f *fakeDKMS) made() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// installed links module version m/v into tree for kernel k, as dkms does.
func installed(tree, m, v, k string) error {
	if err := os.MkdirAll(filepath.Join(tree, m, v, k, "x86_64", "module"), 0o755); err != nil {
		return err
	}
	return os.Symlink(v+"/"+k+"/x86_64", filepath.Join(tree, m, "kernel-"+k+"-x86_64"))
}

// machine is the machine of the tests: kernels, which have headers, the
// boot id, and which apt processes still run.
type machine struct {
	kernels []string
	headers map[string]bool
	bootID  string
	alive   map[int]bool
}

func (m *machine) Kernels() ([]string, error) { return m.kernels, nil }
func (m *machine) HasHeaders(k string) bool   { return m.headers[k] }
func (m *machine) Bootable(k string) bool     { return true }
func (m *machine) Release() string            { return k47 }
func (m *machine) BootID() string             { return m.bootID }
func (m *machine) Alive(p host.Proc) bool     { return m.alive[p.PID] }

// publish is one boot decision asked of Boot.
type publish struct {
	view    []results.Kernel
	exclude string
}

type fakeBoot struct{ calls []publish }

func (b *fakeBoot) Publish(_ context.Context, _ *results.Recorder, view []results.Kernel, exclude string) []string {
	b.calls = append(b.calls, publish{view, exclude})
	return nil
}

type fixture struct {
	h    *Hooks
	dkms *fakeDKMS
	m    *machine
	boot *fakeBoot
	out  *bytes.Buffer
}

// setup is a fake root with modules name → dkms.conf (version 1.0 each,
// added to dkms's tree), kernels 6.1.0-56 and 6.1.0-47 with headers, and
// the hooks wired as internal/app wires them, dkms and the boot entry
// faked.
func setup(t *testing.T, confs map[string]string) *fixture {
	t.Helper()
	p := paths.New(t.TempDir())
	for name, conf := range confs {
		add(t, p, name, "1.0", conf)
	}
	var out bytes.Buffer
	rep := report.New(&out)
	f := &fakeDKMS{tree: p.DKMSTree(), errs: map[string]error{}}
	m := &machine{kernels: []string{k56, k47}, headers: map[string]bool{k56: true, k47: true}, bootID: "boot-a", alive: map[int]bool{}}
	b := &build.Builder{Paths: p, DKMS: f, Report: rep, Arch: "x86_64", Now: func() time.Time { return time.Unix(0, 0) }}
	boot := &fakeBoot{}
	h := &Hooks{Paths: p, Machine: m, Builder: b, Results: &results.Recorder{Paths: p, Machine: m, Chooser: b, Report: rep}, Boot: boot, Report: rep}
	return &fixture{h: h, dkms: f, m: m, boot: boot, out: &out}
}

// add puts module version name/version with its dkms.conf in dkms's tree.
func add(t *testing.T, p paths.Paths, name, version, conf string) {
	t.Helper()
	src := filepath.Join(p.SourceTree(), name+"-"+version)
	must(t, os.MkdirAll(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "dkms.conf"), []byte(conf), 0o644))
	must(t, os.MkdirAll(filepath.Join(p.DKMSTree(), name, version), 0o755))
	must(t, os.Symlink(src, filepath.Join(p.DKMSTree(), name, version, "source")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startRun records apt run id as pre-invoke does: apt (pid) in boot.
func (fx *fixture) startRun(t *testing.T, id, boot string, pid int) {
	t.Helper()
	st, err := state.Open(fx.h.Paths, true, fx.h.Report)
	must(t, err)
	defer st.Close()
	must(t, st.Save(state.RunFile, &state.Run{Schema: state.Schema, ID: id, BootID: boot, Apt: host.Proc{PID: pid, Start: 1, Comm: "apt"}}))
}

// recorded is results.json's result for kernel and module.
func (fx *fixture) recorded(t *testing.T, kernel, module string) (state.Result, bool) {
	t.Helper()
	st, err := state.Open(fx.h.Paths, false, fx.h.Report)
	must(t, err)
	defer st.Close()
	all, err := st.LoadResults()
	must(t, err)
	return all.Get(kernel, module)
}

// said takes the output so far.
func (fx *fixture) said() string {
	s := fx.out.String()
	fx.out.Reset()
	return s
}

func has(t *testing.T, out, line string) {
	t.Helper()
	if !slices.Contains(strings.Split(out, "\n"), line) {
		t.Errorf("no line %q in:\n%s", line, out)
	}
}

var modulesFailing = map[string]string{
	"bad":   "AUTOINSTALL=yes\n",
	"child": "AUTOINSTALL=yes\nBUILD_DEPENDS=bad\n",
	"good":  "AUTOINSTALL=yes\n",
}

// In one apt run, a module whose build failed for a kernel is not built
// for it again (the hook runs for the headers and for the image), nor is
// one left unbuilt because that failure was its BUILD_DEPENDS. Another
// kernel, another run or another version of the module is built.
func TestAutoinstallNotAgain(t *testing.T) {
	fx := setup(t, modulesFailing)
	fx.dkms.errs["bad"] = &program.ExitError{Code: 10}
	fx.m.alive[4242] = true
	fx.startRun(t, "run-1", "boot-a", 4242)
	ctx := context.Background()

	must(t, fx.h.Autoinstall(ctx, k56))
	if got, want := fx.dkms.made(), []string{"bad/1.0 " + k56, "good/1.0 " + k56}; !slices.Equal(got, want) {
		t.Fatalf("first hook run built %q, want %q", got, want)
	}
	first, _ := fx.recorded(t, k56, "bad")
	if first.Run != "run-1" || first.Outcome != state.Failed {
		t.Fatalf("bad's result %+v, want failed in run-1", first)
	}
	fx.said()

	// The image's hook, same run: nothing is built.
	must(t, fx.h.Autoinstall(ctx, k56))
	if got := fx.dkms.made(); len(got) != 2 {
		t.Errorf("second hook run built %q", got[2:])
	}
	out := fx.said()
	has(t, out, "N: dkms-guard: bad/1.0: not built again for 6.1.0-56-amd64: it failed earlier in this apt run (exit 10), see /var/log/dkms-guard/6.1.0-56-amd64/bad-1.0.log")
	has(t, out, "N: dkms-guard: child/1.0: not built for 6.1.0-56-amd64 in this apt run: its BUILD_DEPENDS bad was not installed")
	if strings.Contains(out, "W: ") || strings.Contains(out, "E: ") {
		t.Errorf("second hook run complained again:\n%s", out)
	}
	if r, _ := fx.recorded(t, k56, "bad"); r != first {
		t.Errorf("the earlier failure was replaced: %+v", r)
	}

	// Another kernel is another build.
	must(t, fx.h.Autoinstall(ctx, k47))
	if got := fx.dkms.made(); !slices.Contains(got, "bad/1.0 "+k47) {
		t.Errorf("bad not built for %s: %q", k47, got)
	}

	// The next apt run (the same apt process, say) tries again.
	fx.startRun(t, "run-2", "boot-a", 4242)
	n := len(fx.dkms.made())
	must(t, fx.h.Autoinstall(ctx, k56))
	if got := fx.dkms.made()[n:]; !slices.Equal(got, []string{"bad/1.0 " + k56}) {
		t.Errorf("run-2 built %q, want bad/1.0 again", got)
	}
	if r, _ := fx.recorded(t, k56, "bad"); r.Run != "run-2" {
		t.Errorf("result %+v, want it labelled run-2", r)
	}

	// A new version of the module is another build, in the same run.
	add(t, fx.h.Paths, "bad", "2.0", "AUTOINSTALL=yes\n")
	n = len(fx.dkms.made())
	must(t, fx.h.Autoinstall(ctx, k56))
	if got := fx.dkms.made()[n:]; !slices.Equal(got, []string{"bad/2.0 " + k56}) {
		t.Errorf("built %q, want bad/2.0", got)
	}
}

// A run.json whose apt is gone, or written in an earlier boot, is not the
// run in progress: its failures do not stop a build, the results carry
// no run, and the hook prints its own summary (no post-invoke will).
func TestAutoinstallStaleRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		boot  string
		alive bool
	}{
		{"apt gone", "boot-a", false},
		{"earlier boot", "boot-0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := setup(t, map[string]string{"bad": "AUTOINSTALL=yes\n"})
			fx.dkms.errs["bad"] = &program.ExitError{Code: 10}
			fx.m.alive[4242] = true
			fx.startRun(t, "run-1", "boot-a", 4242)
			ctx := context.Background()
			must(t, fx.h.Autoinstall(ctx, k56))
			fx.said()

			fx.startRun(t, "run-1", tc.boot, 4242)
			fx.m.alive[4242] = tc.alive
			must(t, fx.h.Autoinstall(ctx, k56))
			if got := fx.dkms.made(); len(got) != 2 {
				t.Errorf("built %q, want bad built twice", got)
			}
			if r, _ := fx.recorded(t, k56, "bad"); r.Run != "" {
				t.Errorf("result %+v labelled with a stale run", r)
			}
			out := fx.said()
			has(t, out, "N: dkms-guard: DKMS modules for kernel 6.1.0-56-amd64:")
			if strings.Contains(out, "not built again") {
				t.Errorf("a stale run's failure was trusted:\n%s", out)
			}
		})
	}
}

// Removing a kernel forgets its results and removes its build logs,
// never through a link; the boot entry is decided without it.
func TestPrerm(t *testing.T) {
	fx := setup(t, modulesFailing)
	fx.dkms.errs["bad"] = &program.ExitError{Code: 10}
	ctx := context.Background()
	must(t, fx.h.Autoinstall(ctx, k56))
	must(t, fx.h.Autoinstall(ctx, k47))
	fx.said()
	fx.boot.calls = nil
	logs := fx.h.Paths.LogDir()
	must(t, os.WriteFile(filepath.Join(logs, k56, "extra.log"), nil, 0o644))

	must(t, fx.h.Prerm(ctx, k56))
	has(t, fx.said(), "N: dkms-guard: forgot 3 DKMS build results of kernel 6.1.0-56-amd64, which is being removed")
	for _, m := range []string{"bad", "child", "good"} {
		if r, ok := fx.recorded(t, k56, m); ok {
			t.Errorf("result kept for the removed kernel: %+v", r)
		}
	}
	if _, ok := fx.recorded(t, k47, "bad"); !ok {
		t.Errorf("%s's result forgotten", k47)
	}
	if _, err := os.Lstat(filepath.Join(logs, k56)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log directory of the removed kernel: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logs, k47, "bad-1.0.log")); err != nil {
		t.Errorf("another kernel's log: %v", err)
	}
	if len(fx.boot.calls) != 1 {
		t.Fatalf("%d boot decisions, want 1", len(fx.boot.calls))
	}
	c := fx.boot.calls[0]
	if c.exclude != k56 {
		t.Errorf("boot decided with exclude %q, want %s", c.exclude, k56)
	}
	for _, k := range c.view {
		if k.Kernel == k56 && len(k.Lacks()) > 0 {
			t.Errorf("the view still has the removed kernel's failures: %+v", k)
		}
		if k.Kernel == k47 && len(k.Lacks()) == 0 {
			t.Errorf("the view lost %s's failure: %+v", k47, k)
		}
	}

	// A log directory that is a link is not removed through.
	elsewhere := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(elsewhere, k47), 0o755))
	must(t, os.WriteFile(filepath.Join(elsewhere, k47, "keep.log"), nil, 0o644))
	must(t, os.RemoveAll(logs))
	must(t, os.Symlink(elsewhere, logs))
	must(t, fx.h.Prerm(ctx, k47))
	if _, err := os.Stat(filepath.Join(elsewhere, k47, "keep.log")); err != nil {
		t.Errorf("removed through a link: %v", err)
	}
	if out := fx.said(); !strings.Contains(out, "W: dkms-guard: removing build logs of 6.1.0-47-amd64: ") {
		t.Errorf("no warning about the log directory:\n%s", out)
	}
}

// Without a state directory nothing was ever recorded or pinned: the
// prerm hook leaves the boot entry alone and creates nothing.
func TestPrermNothingRecorded(t *testing.T) {
	fx := setup(t, nil)
	must(t, fx.h.Prerm(context.Background(), k56))
	if len(fx.boot.calls) != 0 {
		t.Errorf("boot decided: %+v", fx.boot.calls)
	}
	if _, err := os.Lstat(fx.h.Paths.StateDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory: %v", err)
	}
	if out := fx.said(); out != "" {
		t.Errorf("output:\n%s", out)
	}
}

// A kernel or module named twice is built, reported and counted once.
func TestRebuildDuplicates(t *testing.T) {
	fx := setup(t, map[string]string{"hello": "AUTOINSTALL=yes\n", "wifi": "AUTOINSTALL=yes\n", "old": "AUTOINSTALL=yes\n"})
	must(t, installed(fx.h.Paths.DKMSTree(), "old", "1.0", k56))
	n, err := fx.h.Rebuild(context.Background(), []string{k56, k99, k56, k99}, []string{"hello", "old", "hello", "wifi", "old"})
	if err != nil || n != 1 {
		t.Errorf("Rebuild = %d, %v; want 1 (the kernel without headers)", n, err)
	}
	if got, want := fx.dkms.made(), []string{"hello/1.0 " + k56, "wifi/1.0 " + k56}; !slices.Equal(got, want) {
		t.Errorf("built %q, want %q", got, want)
	}
	out := fx.said()
	for line, want := range map[string]int{
		"E: dkms-guard: no headers for kernel 6.1.0-99-amd64: install linux-headers-6.1.0-99-amd64 first": 1,
		"N: dkms-guard: old/1.0: already installed for 6.1.0-56-amd64":                                    1,
		"N: dkms-guard: hello/1.0: installed for 6.1.0-56-amd64":                                          1,
	} {
		if got := strings.Count(out, line+"\n"); got != want {
			t.Errorf("%q said %d times, want %d:\n%s", line, got, want, out)
		}
	}
}

// What cannot be done is said plainly: an unknown module is a usage
// error before anything is built, a kernel without headers an E: line.
func TestRebuildUnknown(t *testing.T) {
	fx := setup(t, map[string]string{"hello": "AUTOINSTALL=yes\n"})
	ctx := context.Background()
	n, err := fx.h.Rebuild(ctx, nil, []string{"hello", "nosuch"})
	if !errors.Is(err, ErrUsage) || err.Error() != "usage: no DKMS module named nosuch (see dkms status)" || n != 0 {
		t.Errorf("unknown module: %d, %v", n, err)
	}
	if got := fx.dkms.made(); len(got) != 0 {
		t.Errorf("built %q before the usage error", got)
	}

	n, err = fx.h.Rebuild(ctx, []string{k99}, nil)
	if err != nil || n != 1 {
		t.Errorf("kernel without headers: %d, %v; want 1, nil", n, err)
	}
	has(t, fx.said(), "E: dkms-guard: no headers for kernel 6.1.0-99-amd64: install linux-headers-6.1.0-99-amd64 first")

	fx.m.headers = map[string]bool{}
	if _, err := fx.h.Rebuild(ctx, nil, nil); err == nil || err.Error() != "no kernel with headers installed: nothing to build for" {
		t.Errorf("no kernel with headers: %v", err)
	}
}

// With no kernel named, every kernel with headers; the count is every
// build that failed or was skipped, plus every kernel named without
// headers; unsupported is no failure. Failures are E: lines.
func TestRebuildCount(t *testing.T) {
	fx := setup(t, map[string]string{
		"bad":   "AUTOINSTALL=yes\n",
		"child": "AUTOINSTALL=yes\nBUILD_DEPENDS=bad\n",
		"excl":  "AUTOINSTALL=yes\n",
		"good":  "AUTOINSTALL=yes\n",
	})
	fx.dkms.errs["bad"] = &program.ExitError{Code: 10}
	fx.dkms.errs["excl"] = &program.ExitError{Code: 77}
	fx.m.kernels = append(fx.m.kernels, k99)
	ctx := context.Background()

	n, err := fx.h.Rebuild(ctx, nil, nil)
	if err != nil || n != 4 {
		t.Errorf("Rebuild = %d, %v; want 4 (bad and child, for two kernels)", n, err)
	}
	for _, c := range fx.dkms.made() {
		if strings.HasSuffix(c, " "+k99) {
			t.Errorf("built for the kernel without headers: %s", c)
		}
	}
	out := fx.said()
	has(t, out, "E: dkms-guard: bad/1.0: build failed for 6.1.0-56-amd64 (exit 10), see /var/log/dkms-guard/6.1.0-56-amd64/bad-1.0.log")
	has(t, out, "N: dkms-guard: dkms-guard rebuild:")

	n, err = fx.h.Rebuild(ctx, []string{k56, k99}, nil)
	if err != nil || n != 3 {
		t.Errorf("Rebuild = %d, %v; want 3 (bad, child, no headers)", n, err)
	}
	if r, _ := fx.recorded(t, k56, "bad"); r.By != "rebuild" || r.Severity != state.SevError {
		t.Errorf("result %+v, want by rebuild, severity error", r)
	}
}
