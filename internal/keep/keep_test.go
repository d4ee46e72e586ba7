package keep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/kmod"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

const (
	k1 = "6.1.0-47-amd64"
	k2 = "6.1.0-56-amd64"
)

var now = time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)

// env is a fake machine: a root with dkms's tree, /usr/src and
// /lib/modules, a real state store, and fakes for the programs.
type env struct {
	t      *testing.T
	p      paths.Paths
	st     *state.Store
	out    bytes.Buffer
	dkms   *fakeDKMS
	initrd *fakeInitramfs
	check  *fakeChecker
	k      *Keeper
}

func newEnv(t *testing.T, kernels ...string) *env {
	e := &env{t: t, p: paths.New(t.TempDir())}
	for _, k := range kernels {
		must(t, os.MkdirAll(filepath.Join(e.p.ModulesDir(), k), 0o755))
	}
	r := report.New(&e.out)
	st, err := state.Open(e.p, true, r)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	e.st = st
	e.dkms = &fakeDKMS{t: t, p: e.p, fail: map[string]error{}}
	e.initrd = &fakeInitramfs{images: map[string][]string{}}
	e.check = &fakeChecker{}
	e.k = &Keeper{
		Paths: e.p, DKMS: e.dkms, Initramfs: e.initrd, Checker: e.check, Report: r,
		Now: func() time.Time { return now }, Settings: config.Defaults(),
		Log: io.Discard, LogName: "/var/log/dkms-guard/keep.log",
	}
	return e
}

// add is `dkms add`: /usr/src/M-V and the tree's source link.
func (e *env) add(m, v string) {
	src := filepath.Join(e.p.SourceTree(), m+"-"+v)
	must(e.t, os.MkdirAll(src, 0o755))
	dir := filepath.Join(e.p.DKMSTree(), m, v)
	must(e.t, os.MkdirAll(dir, 0o755))
	must(e.t, os.Symlink(src, filepath.Join(dir, "source")))
}

// install is `dkms install`: the built kernel modules (by default M.ko)
// and the kernel-K-ARCH link.
func (e *env) install(m, v, k string, kos ...string) {
	if len(kos) == 0 {
		kos = []string{m + ".ko"}
	}
	dir := filepath.Join(e.p.DKMSTree(), m, v, k, arch, "module")
	must(e.t, os.MkdirAll(dir, 0o755))
	for _, ko := range kos {
		must(e.t, os.WriteFile(filepath.Join(dir, ko), []byte(m+"/"+v+"/"+k), 0o644))
	}
	link := filepath.Join(e.p.DKMSTree(), m, "kernel-"+k+"-"+arch)
	os.Remove(link)
	must(e.t, os.Symlink(filepath.Join(v, k, arch), link))
}

// unbuild is dkms kernel_preinst: uninstalled and unbuilt for k.
func (e *env) unbuild(m, v, k string) {
	must(e.t, os.Remove(filepath.Join(e.p.DKMSTree(), m, "kernel-"+k+"-"+arch)))
	must(e.t, os.RemoveAll(filepath.Join(e.p.DKMSTree(), m, v, k)))
}

// upgradeRemoves is what a module package's upgrade does to its old
// version: dh_dkms's prerm (`dkms remove --all`), then dpkg deletes /usr/src/M-V.
func (e *env) upgradeRemoves(m, v string) {
	links, _ := filepath.Glob(filepath.Join(e.p.DKMSTree(), m, "kernel-*"))
	for _, l := range links {
		if t, _ := os.Readlink(l); strings.HasPrefix(t, v+"/") {
			must(e.t, os.Remove(l))
		}
	}
	must(e.t, os.RemoveAll(filepath.Join(e.p.DKMSTree(), m, v)))
	must(e.t, os.RemoveAll(filepath.Join(e.p.SourceTree(), m+"-"+v)))
}

func (e *env) tree() dkms.Tree {
	tree, err := dkms.ReadTree(e.p.DKMSTree())
	must(e.t, err)
	return tree
}

func (e *env) installed(m, k string) string {
	mod, ok := e.tree().InstalledFor(m, k)
	if !ok {
		return ""
	}
	return mod.Version
}

func (e *env) kept() state.Kept {
	kept, err := e.st.LoadKept()
	must(e.t, err)
	return kept
}

// result records a build outcome in results.json, as the builds do.
func (e *env) result(k, m, v string, o state.Outcome) {
	rs, err := e.st.LoadResults()
	must(e.t, err)
	rs.Put(state.Result{Kernel: k, Module: m, Version: v, Outcome: o, Log: "/var/log/dkms-guard/" + k + "/" + m + "-" + v + ".log", Time: now})
	must(e.t, e.st.Save(state.ResultsFile, rs))
}

func (e *env) keep(wants ...Want) {
	e.k.Keep(context.Background(), e.st, wants, "run-1")
}

func (e *env) settle(opt Options) []state.KeptBuild {
	put, err := e.k.Settle(context.Background(), e.st, e.tree(), opt)
	must(e.t, err)
	return put
}

// said returns and forgets what was reported.
func (e *env) said() string {
	s := e.out.String()
	e.out.Reset()
	return s
}

// calls returns and forgets the dkms calls.
func (e *env) calls() []string {
	c := e.dkms.calls
	e.dkms.calls = nil
	return c
}

// archives lists the kept directory.
func (e *env) archives() []string {
	ents, _ := os.ReadDir(e.p.KeptDir())
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

func (e *env) added(m, v string) bool {
	_, err := os.Lstat(filepath.Join(e.p.DKMSTree(), m, v, "source"))
	return err == nil
}

func (e *env) exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := strings.TrimSpace(toString(got)), strings.TrimSpace(toString(want)); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []string:
		return strings.Join(v, "\n")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

var wifi = Want{Module: "wifi", Version: "1.0", Package: "wifi-dkms", Kernels: []string{k1, k2}, Why: state.KeptForUpgrade}

// An upgrade keeps every installed build with its source, once, and
// records which initramfs held one of the kernel modules it built.
func TestKeepOnUpgrade(t *testing.T) {
	e := newEnv(t, k1, k2)
	e.add("wifi", "1.0")
	e.install("wifi", "1.0", k1, "wlan.ko")
	e.install("wifi", "1.0", k2, "wlan.ko")
	must(t, os.MkdirAll(filepath.Dir(e.p.Initrd(k1)), 0o755))
	for _, k := range []string{k1, k2} {
		must(t, os.WriteFile(e.p.Initrd(k), nil, 0o644))
	}
	e.initrd.images["/boot/initrd.img-"+k1] = []string{"usr/lib/modules/" + k1 + "/updates/dkms/wlan.ko.zst"}
	e.initrd.images["/boot/initrd.img-"+k2] = []string{"usr/lib/modules/" + k2 + "/kernel/wifi.ko"} // not what wifi builds

	e.keep(wifi)
	eq(t, "said", e.said(), "")
	eq(t, "calls", e.calls(), []string{"mktarball wifi/1.0/" + k1, "mktarball wifi/1.0/" + k2})
	kept := e.kept()
	if len(kept.Builds) != 2 {
		t.Fatalf("kept %+v", kept.Builds)
	}
	for i, b := range kept.Builds {
		if b.Module != "wifi" || b.Version != "1.0" || b.Package != "wifi-dkms" || b.Why != state.KeptForUpgrade || !b.Source || b.Run != "run-1" || b.Arch != arch || !b.Time.Equal(now) {
			t.Errorf("build %d: %+v", i, b)
		}
		fi, err := os.Stat(filepath.Join(e.p.KeptDir(), b.Archive))
		if err != nil || fi.Size() != b.Size || b.Size == 0 {
			t.Errorf("archive %s: %v, size %d", b.Archive, err, b.Size)
		}
	}
	eq(t, "archives", e.archives(), []string{"wifi-1.0-" + k1 + ".dkms.tar.gz", "wifi-1.0-" + k2 + ".dkms.tar.gz"})
	if !kept.Builds[0].InInitramfs || kept.Builds[1].InInitramfs {
		t.Errorf("in initramfs: %v, %v", kept.Builds[0].InInitramfs, kept.Builds[1].InInitramfs)
	}
	if fi, err := os.Stat(e.p.KeptDir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("kept dir: %v %v", fi.Mode(), err)
	}

	// Not kept again: apt-plan runs again, or the same run is replayed.
	e.keep(wifi)
	eq(t, "calls again", e.calls(), "")
	eq(t, "said again", e.said(), "")
}

// KEEP_WORKING_BUILDS=no keeps nothing.
func TestKeepTurnedOff(t *testing.T) {
	e := newEnv(t, k1)
	e.add("wifi", "1.0")
	e.install("wifi", "1.0", k1)
	e.k.Settings.KeepBuilds = false
	e.keep(wifi)
	must(t, os.MkdirAll(filepath.Join(e.p.KernelHookDir("preinst"), "dkms"), 0o755))
	e.k.KeepKernel(context.Background(), e.st, e.tree(), k1)
	eq(t, "calls", e.calls(), "")
	if e.exists(e.p.KeptDir()) || e.exists(filepath.Join(e.p.StateDir(), state.KeptFile)) {
		t.Error("kept something")
	}
}

// A build that cannot be kept is a W: line, and the others are kept.
func TestKeepFails(t *testing.T) {
	e := newEnv(t, k1, k2)
	e.add("wifi", "1.0")
	e.install("wifi", "1.0", k1)
	e.install("wifi", "1.0", k2)
	e.dkms.fail["mktarball wifi/1.0/"+k1] = errors.New("exit status 9")
	e.keep(wifi)
	eq(t, "said", e.said(), "W: dkms-guard: cannot keep wifi/1.0 for "+k1+": dkms mktarball: exit status 9 (log: /var/log/dkms-guard/keep.log)")
	if kept := e.kept(); len(kept.Builds) != 1 || kept.Builds[0].Kernel != k2 {
		t.Errorf("kept %+v", kept.Builds)
	}
}

// keptUpgrade is wifi 1.0 kept for both kernels, then upgraded: the
// old version is gone and 2.0 is added.
func keptUpgrade(t *testing.T) *env {
	e := newEnv(t, k1, k2)
	e.add("wifi", "1.0")
	e.install("wifi", "1.0", k1)
	e.install("wifi", "1.0", k2)
	must(t, os.MkdirAll(filepath.Dir(e.p.Initrd(k1)), 0o755))
	must(t, os.WriteFile(e.p.Initrd(k1), nil, 0o644))
	e.initrd.images["/boot/initrd.img-"+k1] = []string{"usr/lib/modules/" + k1 + "/updates/dkms/wifi.ko"}
	e.keep(wifi)
	e.calls()
	e.upgradeRemoves("wifi", "1.0")
	e.add("wifi", "2.0")
	return e
}

// The new version fails on every kernel: the old one is put back on
// each, one E: line says so, and it stands in until 3.0 replaces it;
// then nothing of 1.0 is left.
func TestPutBackEveryKernel(t *testing.T) {
	e := keptUpgrade(t)
	e.result(k1, "wifi", "2.0", state.Failed)
	e.result(k2, "wifi", "2.0", state.Failed)
	e.k.Critical = func(_ context.Context, kernel, module string) bool { return kernel == k2 && module == "wifi" }

	put := e.settle(Options{})
	eq(t, "said", e.said(), "E: dkms-guard: wifi/2.0 failed for "+k1+", "+k2+" (logs: /var/log/dkms-guard/"+k1+"/wifi-2.0.log, /var/log/dkms-guard/"+k2+"/wifi-2.0.log); kept wifi/1.0 for them; retry once the cause is fixed: dkms-guard rebuild --module wifi")
	eq(t, "calls", e.calls(), []string{
		"ldtarball wifi-1.0-" + k1 + ".dkms.tar.gz", "install --force wifi/1.0/" + k1, "depmod " + k1,
		"ldtarball --force wifi-1.0-" + k2 + ".dkms.tar.gz", "install --force wifi/1.0/" + k2, "depmod " + k2,
	})
	eq(t, "initramfs updated", e.initrd.updated, []string{k1, k2}) // k1's held it, k2 needs it
	if len(put) != 2 {
		t.Fatalf("put back %+v", put)
	}
	for _, k := range []string{k1, k2} {
		eq(t, "installed for "+k, e.installed("wifi", k), "1.0")
	}
	for _, b := range e.kept().Builds {
		if !b.PutBack.Equal(now) || b.Failed != "2.0" || b.FailedLog != "/var/log/dkms-guard/"+b.Kernel+"/wifi-2.0.log" || !b.OwnsSource {
			t.Errorf("kept %+v", b)
		}
	}

	// It stands in: nothing to do, nothing to say.
	e.settle(Options{})
	eq(t, "said again", e.said(), "")
	eq(t, "calls again", e.calls(), "")

	// The fixed version arrives, first for k1 (dkms leaves 1.0 built
	// there), then for k2.
	e.add("wifi", "3.0")
	e.install("wifi", "3.0", k1)
	e.settle(Options{})
	eq(t, "said at the fix for k1", e.said(), "N: dkms-guard: dropped the kept build wifi/1.0: wifi/3.0 is installed for "+k1)
	eq(t, "calls at the fix for k1", e.calls(), []string{"remove wifi/1.0 -k " + k1})
	eq(t, "installed for k2", e.installed("wifi", k2), "1.0")
	e.install("wifi", "3.0", k2)
	e.settle(Options{})
	eq(t, "said at the fix", e.said(), "N: dkms-guard: dropped the kept build wifi/1.0: wifi/3.0 is installed for "+k2)
	eq(t, "calls at the fix", e.calls(), []string{"remove wifi/1.0 --all"})
	if e.exists(filepath.Join(e.p.DKMSTree(), "wifi", "1.0")) || e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("wifi/1.0 left behind")
	}
	eq(t, "archives", e.archives(), "")
	eq(t, "kept", len(e.kept().Builds), 0)
}

// The new version fails on one kernel only: the other's kept build is
// dropped quietly, the failed one's put back.
func TestPutBackOneKernel(t *testing.T) {
	e := keptUpgrade(t)
	e.install("wifi", "2.0", k1)
	e.result(k1, "wifi", "2.0", state.Installed)
	e.result(k2, "wifi", "2.0", state.Failed)
	put := e.settle(Options{})
	eq(t, "said", e.said(), "E: dkms-guard: wifi/2.0 failed for "+k2+" (log: /var/log/dkms-guard/"+k2+"/wifi-2.0.log); kept wifi/1.0 for it; retry once the cause is fixed: dkms-guard rebuild --module wifi")
	eq(t, "calls", e.calls(), []string{"ldtarball wifi-1.0-" + k2 + ".dkms.tar.gz", "install --force wifi/1.0/" + k2, "depmod " + k2})
	if len(put) != 1 || put[0].Kernel != k2 {
		t.Errorf("put back %+v", put)
	}
	eq(t, "installed for k1", e.installed("wifi", k1), "2.0")
	eq(t, "installed for k2", e.installed("wifi", k2), "1.0")
	eq(t, "archives", e.archives(), "wifi-1.0-"+k2+".dkms.tar.gz")
	eq(t, "initramfs updated", e.initrd.updated, "")

	// Then k2 is removed: the kept build goes, and with it wifi/1.0.
	must(t, os.RemoveAll(filepath.Join(e.p.ModulesDir(), k2)))
	e.settle(Options{})
	eq(t, "said at removal", e.said(), "N: dkms-guard: dropped the kept build wifi/1.0 for "+k2+": the kernel is removed")
	eq(t, "calls at removal", e.calls(), "remove wifi/1.0 --all")
	if e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("/usr/src/wifi-1.0 left behind")
	}
	eq(t, "kept", len(e.kept().Builds), 0)
}

// The new version does not support the old kernel (no version is
// installed there): the old one is put back, with a W: line.
func TestPutBackUnsupported(t *testing.T) {
	e := keptUpgrade(t)
	e.install("wifi", "2.0", k2)
	e.result(k1, "wifi", "2.0", state.Unsupported)
	e.k.Critical = func(context.Context, string, string) bool { return true }
	e.settle(Options{NoInitramfs: true})
	eq(t, "initramfs updated", e.initrd.updated, "") // the caller's initramfs-tools does it
	eq(t, "said", e.said(), "W: dkms-guard: wifi/2.0 does not support "+k1+"; kept wifi/1.0 for it")
	eq(t, "installed for k1", e.installed("wifi", k1), "1.0")
	eq(t, "installed for k2", e.installed("wifi", k2), "2.0")
}

// The new version never reached dkms's tree (its postinst failed before
// dkms add): the old one is put back all the same.
func TestPutBackNoNewVersion(t *testing.T) {
	e := keptUpgrade(t)
	must(t, os.RemoveAll(filepath.Join(e.p.DKMSTree(), "wifi", "2.0")))
	e.settle(Options{NoInitramfs: true})
	eq(t, "said", e.said(), "E: dkms-guard: no version of wifi is installed for "+k1+", "+k2+" since its package wifi-dkms changed; kept wifi/1.0 for them until a newer version installs")
	for _, b := range e.kept().Builds {
		if b.PutBack.IsZero() || b.Failed != "" {
			t.Errorf("kept %+v", b)
		}
	}
}

// A kernel's hook in the middle of dpkg leaves alone the kept builds of
// a package the run has yet to configure.
func TestSettlePending(t *testing.T) {
	e := keptUpgrade(t)
	put := e.settle(Options{Kernels: []string{k1}, Pending: map[string]bool{"wifi-dkms": true}})
	if len(put) != 0 || len(e.kept().Builds) != 2 {
		t.Errorf("put back %+v, kept %+v", put, e.kept().Builds)
	}
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "")
}

// A version put back goes with its package: nothing of it is left.
func TestRemovedPackagePutBack(t *testing.T) {
	e := keptUpgrade(t)
	e.settle(Options{})
	e.calls()
	e.said()
	must(t, os.RemoveAll(filepath.Join(e.p.DKMSTree(), "wifi", "2.0"))) // its prerm
	e.settle(Options{Removed: map[string]bool{"wifi-dkms": true}})
	eq(t, "said", e.said(), "N: dkms-guard: dropped the kept build wifi/1.0 for "+k1+", "+k2+": its package wifi-dkms was removed")
	eq(t, "calls", e.calls(), "remove wifi/1.0 --all")
	if e.exists(filepath.Join(e.p.DKMSTree(), "wifi", "1.0")) || e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("wifi/1.0 left behind")
	}
	eq(t, "archives", e.archives(), "")
}

// Removing the module's package puts nothing back and leaves nothing.
func TestRemovedPackage(t *testing.T) {
	e := keptUpgrade(t)
	must(t, os.RemoveAll(filepath.Join(e.p.DKMSTree(), "wifi")))
	put := e.settle(Options{Removed: map[string]bool{"wifi-dkms": true}})
	if len(put) != 0 {
		t.Errorf("put back %+v", put)
	}
	eq(t, "said", e.said(), "")
	eq(t, "calls", e.calls(), "")
	eq(t, "archives", e.archives(), "")
	eq(t, "kept", len(e.kept().Builds), 0)
}

// Settle limited to one kernel leaves the others alone.
func TestSettleKernels(t *testing.T) {
	e := keptUpgrade(t)
	e.settle(Options{Kernels: []string{k2}})
	eq(t, "calls", e.calls(), []string{"ldtarball wifi-1.0-" + k2 + ".dkms.tar.gz", "install --force wifi/1.0/" + k2, "depmod " + k2})
	eq(t, "installed for k1", e.installed("wifi", k1), "")
	// No result names a log: the newest version is the one that failed.
	eq(t, "said", e.said(), "E: dkms-guard: wifi/2.0 failed for "+k2+"; kept wifi/1.0 for it; retry once the cause is fixed: dkms-guard rebuild --module wifi")
	// k1's turn: /usr/src/wifi-1.0 exists now, put back by k2's archive,
	// and is still dkms-guard's.
	e.settle(Options{Kernels: []string{k1}})
	eq(t, "calls for k1", e.calls(), []string{"ldtarball --force wifi-1.0-" + k1 + ".dkms.tar.gz", "install --force wifi/1.0/" + k1, "depmod " + k1})
	for _, b := range e.kept().Builds {
		if !b.OwnsSource {
			t.Errorf("%s does not own the source", b.Kernel)
		}
	}
	// k2 goes first, then k1: the source goes with the last. (dkms's own
	// prerm.d hook removes a kernel's modules before kernel-prerm runs.)
	e.unbuild("wifi", "1.0", k2)
	must(t, e.k.DropKernel(context.Background(), e.st, k2))
	eq(t, "calls dropping k2", e.calls(), "")
	if !e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("source removed while k1 still uses it")
	}
	e.unbuild("wifi", "1.0", k1)
	must(t, e.k.DropKernel(context.Background(), e.st, k1))
	eq(t, "calls dropping k1", e.calls(), "remove wifi/1.0 --all")
	if e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("source left behind")
	}
	e.said()
}

// A put-back that fails is an E: line naming dkms's log, and is tried
// again next time.
func TestPutBackFails(t *testing.T) {
	e := keptUpgrade(t)
	e.dkms.fail["install --force wifi/1.0/"+k1] = errors.New("exit status 4")
	put := e.settle(Options{Kernels: []string{k1}})
	if len(put) != 0 {
		t.Errorf("put back %+v", put)
	}
	eq(t, "said", e.said(), "E: dkms-guard: cannot put back the kept build wifi/1.0 for "+k1+": dkms install: exit status 4 (log: /var/log/dkms-guard/keep.log); keeping it to retry")
	eq(t, "calls", e.calls(), []string{"ldtarball wifi-1.0-" + k1 + ".dkms.tar.gz", "install --force wifi/1.0/" + k1})
	kept := e.kept()
	if len(kept.Builds) != 2 || !kept.Builds[0].PutBack.IsZero() || !kept.Builds[0].OwnsSource {
		t.Fatalf("kept %+v", kept.Builds)
	}
	delete(e.dkms.fail, "install --force wifi/1.0/"+k1)
	if put := e.settle(Options{Kernels: []string{k1}}); len(put) != 1 {
		t.Errorf("retry put back %+v", put)
	}
	eq(t, "installed for k1", e.installed("wifi", k1), "1.0")
}

// kernelKept is hello 1.0 installed for k1, kept before k1's image is
// reinstalled, and unbuilt by dkms's kernel_preinst.
func kernelKept(t *testing.T) *env {
	e := newEnv(t, k1)
	e.add("hello", "1.0")
	e.install("hello", "1.0", k1)
	must(t, os.MkdirAll(e.p.KernelHookDir("preinst"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.p.KernelHookDir("preinst"), "dkms"), nil, 0o755))
	e.k.KeepKernel(context.Background(), e.st, e.tree(), k1)
	eq(t, "keep calls", e.calls(), "mktarball --binaries-only hello/1.0/"+k1)
	kept := e.kept()
	if len(kept.Builds) != 1 || kept.Builds[0].Source || kept.Builds[0].Why != state.KeptForKernel {
		t.Fatalf("kept %+v", kept.Builds)
	}
	e.unbuild("hello", "1.0", k1)
	return e
}

// Without dkms's preinst.d hook (dkms < 3.1.6) the builds stay: nothing to keep.
func TestKeepKernelOldDKMS(t *testing.T) {
	e := newEnv(t, k1)
	e.add("hello", "1.0")
	e.install("hello", "1.0", k1)
	e.k.KeepKernel(context.Background(), e.st, e.tree(), k1)
	eq(t, "calls", e.calls(), "")
}

// The kernel's rebuild failed: the build from before is checked against
// the reinstalled kernel, then put back, and its archive dropped: it is
// that version's own build, nothing newer is waited for, so it must not
// stand in (and keep the notice up) forever.
func TestPutBackKernel(t *testing.T) {
	e := kernelKept(t)
	e.result(k1, "hello", "1.0", state.Failed)
	e.settle(Options{Kernels: []string{k1}, NoInitramfs: true})
	eq(t, "checked", e.check.checked, "hello.ko=hello/1.0/"+k1)
	eq(t, "calls", e.calls(), []string{"ldtarball --force hello-1.0-" + k1 + ".dkms.tar.gz", "install --force hello/1.0/" + k1, "depmod " + k1})
	eq(t, "said", e.said(), "E: dkms-guard: the rebuild of hello/1.0 failed for "+k1+" after its kernel was reinstalled (log: /var/log/dkms-guard/"+k1+"/hello-1.0.log); put back the build from before, which fits the reinstalled kernel")
	eq(t, "installed", e.installed("hello", k1), "1.0")
	eq(t, "kept", len(e.kept().Builds), 0)
	eq(t, "archives", e.archives(), "") // the archive and the check's copy are gone
	if !e.exists(filepath.Join(e.p.SourceTree(), "hello-1.0")) || !e.added("hello", "1.0") {
		t.Error("touched the version a package owns")
	}

	// Nothing is left to do, and nothing more is said.
	e.settle(Options{})
	eq(t, "calls after", e.calls(), "")
	eq(t, "said after", e.said(), "")
}

// A build that does not fit the reinstalled kernel is an E: line and is
// dropped, never loaded.
func TestPutBackKernelMismatch(t *testing.T) {
	e := kernelKept(t)
	e.check.err = &kmod.MismatchError{File: "hello.ko", Kernel: k1, Vermagic: "6.1.0-47-amd64 SMP mod_unload", KernelVermagic: "6.1.0-47-amd64 SMP preempt mod_unload"}
	put := e.settle(Options{})
	if len(put) != 0 {
		t.Errorf("put back %+v", put)
	}
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "E: dkms-guard: cannot put back the build of hello/1.0 from before "+k1+" was reinstalled: "+e.check.err.Error()+"; dropped it")
	eq(t, "kept", len(e.kept().Builds), 0)
	eq(t, "archives", e.archives(), "")
}

// A check that cannot be made (modinfo missing, no module of the kernel to
// compare with) is a W: line, and the build is put back: without it the
// kernel lacks the module for certain.
func TestPutBackKernelUnchecked(t *testing.T) {
	e := kernelKept(t)
	e.check.err = errors.New("modinfo: not found")
	put := e.settle(Options{})
	if len(put) != 1 {
		t.Errorf("put back %+v", put)
	}
	if said := e.said(); !strings.Contains(said, "W: dkms-guard: cannot check the build of hello/1.0 from before "+k1+" was reinstalled against it: modinfo: not found; putting it back unchecked") {
		t.Errorf("said %s", said)
	}
}

// The kernel's rebuild succeeded: the kept build is dropped unseen.
func TestKernelRebuilt(t *testing.T) {
	e := kernelKept(t)
	e.install("hello", "1.0", k1)
	e.settle(Options{})
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "")
	eq(t, "kept", len(e.kept().Builds), 0)
	eq(t, "archives", e.archives(), "")
}

// A put-back version someone removed with dkms remove stays removed.
func TestPutBackRemovedByHand(t *testing.T) {
	e := keptUpgrade(t)
	e.settle(Options{})
	e.calls()
	e.said()
	must(t, e.dkms.Remove(context.Background(), "wifi", "1.0", "", nil))
	e.calls()
	e.settle(Options{})
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "N: dkms-guard: dropped the kept build wifi/1.0 for "+k1+", "+k2+": it was removed from dkms's tree")
	if e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("source left behind")
	}
}

// Removing dkms-guard drops every archive, the directory and kept.json
// too (files the list does not name are swept), but a build put back stays
// installed: removing dkms-guard must not take a working module away.
func TestDropAll(t *testing.T) {
	e := keptUpgrade(t)
	e.settle(Options{})
	e.calls()
	e.said()
	must(t, os.WriteFile(filepath.Join(e.p.KeptDir(), "stray.dkms.tar.gz"), nil, 0o600))
	must(t, e.k.DropAll(context.Background(), e.st))
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "N: dkms-guard: left wifi/1.0 installed for "+k1+", "+k2+" in place of wifi/2.0, which did not install: dkms-guard is removed and no longer keeps it; to remove it: dkms remove -m wifi -v 1.0 --all; rm -rf /usr/src/wifi-1.0")
	if e.exists(e.p.KeptDir()) || e.exists(filepath.Join(e.p.StateDir(), state.KeptFile)) {
		t.Error("left an archive or kept.json behind")
	}
	if !e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("removed the source of a build that stays installed")
	}
}

// Removing dkms-guard after a kernel's build was put back: that build is
// the one dkms had before the reinstall, its source the package's own, so
// no line offers commands that would remove the package's module.
func TestDropAllKernelPutBack(t *testing.T) {
	e := kernelKept(t)
	e.result(k1, "hello", "1.0", state.Failed)
	e.settle(Options{Kernels: []string{k1}, NoInitramfs: true})
	e.calls()
	e.said()
	must(t, e.k.DropAll(context.Background(), e.st))
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "")
	eq(t, "installed", e.installed("hello", k1), "1.0")
}

// A put-back version whose /usr/src directory was there before is left
// without an rm -rf of it: dkms-guard did not make it.
func TestDropAllSourceNotOwned(t *testing.T) {
	e := keptUpgrade(t)
	e.result(k1, "wifi", "2.0", state.Failed)
	e.result(k2, "wifi", "2.0", state.Failed)
	e.settle(Options{})
	e.calls()
	e.said()
	kept := e.kept()
	for i := range kept.Builds {
		kept.Builds[i].OwnsSource = false
	}
	must(t, e.st.Save(state.KeptFile, kept))
	must(t, e.k.DropAll(context.Background(), e.st))
	eq(t, "said", e.said(), "N: dkms-guard: left wifi/1.0 installed for "+k1+", "+k2+" in place of wifi/2.0, which did not install: dkms-guard is removed and no longer keeps it; to remove it: dkms remove -m wifi -v 1.0 --all")
}

// A kernel without headers, where the new version was not built at all:
// the old build goes back with a W: line that says so, not that it failed.
func TestPutBackNoHeaders(t *testing.T) {
	e := keptUpgrade(t)
	rs, err := e.st.LoadResults()
	must(t, err)
	rs.Put(state.Result{Kernel: k1, Module: "wifi", Version: "2.0", Outcome: state.Skipped, Reason: "no headers for this kernel are installed", Time: now})
	must(t, e.st.Save(state.ResultsFile, rs))
	e.result(k2, "wifi", "2.0", state.Failed)
	e.settle(Options{})
	eq(t, "said", e.said(), "W: dkms-guard: wifi/2.0 was not built for "+k1+": no headers for this kernel are installed; kept wifi/1.0 for it\n"+
		"E: dkms-guard: wifi/2.0 failed for "+k2+" (log: /var/log/dkms-guard/"+k2+"/wifi-2.0.log); kept wifi/1.0 for it; retry once the cause is fixed: dkms-guard rebuild --module wifi")
}

// A rebuild failure its build reported as a W: line (the module's
// package did not change) is told as a W: line when its kept build goes
// back too: one event, one severity.
func TestPutBackKernelWarning(t *testing.T) {
	e := kernelKept(t)
	rs, err := e.st.LoadResults()
	must(t, err)
	rs.Put(state.Result{Kernel: k1, Module: "hello", Version: "1.0", Outcome: state.Failed, Severity: state.SevWarning, Log: "/var/log/dkms-guard/" + k1 + "/hello-1.0.log", Time: now})
	must(t, e.st.Save(state.ResultsFile, rs))
	e.settle(Options{Kernels: []string{k1}, NoInitramfs: true})
	eq(t, "said", e.said(), "W: dkms-guard: the rebuild of hello/1.0 failed for "+k1+" after its kernel was reinstalled (log: /var/log/dkms-guard/"+k1+"/hello-1.0.log); put back the build from before, which fits the reinstalled kernel")
}

// Builds kept but never put back are simply dropped on removal.
func TestDropAllNotPutBack(t *testing.T) {
	e := keptUpgrade(t)
	e.calls()
	must(t, e.k.DropAll(context.Background(), e.st))
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "")
	if e.exists(e.p.KeptDir()) || e.exists(filepath.Join(e.p.StateDir(), state.KeptFile)) {
		t.Error("left something behind")
	}
}

// Names that make M-V-K ambiguous get distinct archives.
func TestArchiveNames(t *testing.T) {
	var kept state.Kept
	a := archiveName(kept, "a-b", "1", "k")
	kept.Builds = append(kept.Builds, state.KeptBuild{Module: "a-b", Version: "1", Kernel: "k", Archive: a})
	b := archiveName(kept, "a", "b-1", "k")
	if a == b || !strings.HasSuffix(b, archiveSuffix) || strings.Contains(b, "/") {
		t.Errorf("%q, %q", a, b)
	}
	if got := archiveName(kept, "a-b", "1", "k"); got != a {
		t.Errorf("same build, other name: %q", got)
	}
	if n := archiveName(kept, "../x", "1", "k"); strings.Contains(n, "/") {
		t.Errorf("%q", n)
	}
}

// A version dkms cannot remove stays kept, and is removed next time.
func TestRemoveFails(t *testing.T) {
	e := keptUpgrade(t)
	e.settle(Options{})
	e.add("wifi", "3.0")
	e.install("wifi", "3.0", k1)
	e.install("wifi", "3.0", k2)
	e.calls()
	e.said()
	e.dkms.fail["remove wifi/1.0 --all"] = errors.New("exit 1")
	e.settle(Options{})
	eq(t, "said", e.said(), "E: dkms-guard: cannot remove wifi/1.0, put back from a kept build: dkms remove: exit 1 (log: /var/log/dkms-guard/keep.log); trying again next time")
	if len(e.kept().Builds) != 2 || len(e.archives()) != 2 || !e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Fatalf("kept %+v, archives %v", e.kept().Builds, e.archives())
	}
	delete(e.dkms.fail, "remove wifi/1.0 --all")
	e.calls()
	e.settle(Options{})
	eq(t, "calls", e.calls(), "remove wifi/1.0 --all")
	eq(t, "kept", len(e.kept().Builds), 0)
	e.said()
}

// Two versions kept for one kernel (the first run never settled): the
// newer is put back, the older dropped.
func TestPutBackNewest(t *testing.T) {
	e := keptUpgrade(t)
	e.install("wifi", "2.0", k1)
	e.keep(Want{Module: "wifi", Version: "2.0", Package: "wifi-dkms", Kernels: []string{k1}, Why: state.KeptForUpgrade})
	e.upgradeRemoves("wifi", "2.0")
	e.add("wifi", "2.1")
	e.calls()
	e.settle(Options{Kernels: []string{k1}})
	eq(t, "calls", e.calls(), []string{"ldtarball wifi-2.0-" + k1 + ".dkms.tar.gz", "install --force wifi/2.0/" + k1, "depmod " + k1})
	eq(t, "said", e.said(), "E: dkms-guard: wifi/2.1 failed for "+k1+"; kept wifi/2.0 for it; retry once the cause is fixed: dkms-guard rebuild --module wifi")
	eq(t, "archives", e.archives(), []string{"wifi-1.0-" + k2 + ".dkms.tar.gz", "wifi-2.0-" + k1 + ".dkms.tar.gz"})
}

// A put-back build already gone for its kernel when the replacement
// arrives needs no dkms remove.
func TestReplacedNothingLeft(t *testing.T) {
	e := kernelKept(t)
	e.settle(Options{})
	e.unbuild("hello", "1.0", k1)
	e.add("hello", "1.1")
	e.install("hello", "1.1", k1)
	e.calls()
	e.said()
	e.settle(Options{})
	eq(t, "calls", e.calls(), "")
	eq(t, "kept", len(e.kept().Builds), 0)
}

// fakeOwners answers dpkg-query -S from a map, and logs the questions.
type fakeOwners struct {
	owners map[string]string
	asked  []string
	err    error
}

func (f *fakeOwners) Owners(ctx context.Context, paths []string) (map[string]string, error) {
	f.asked = append(f.asked, paths...)
	out := map[string]string{}
	for _, p := range paths {
		if pkg := f.owners[p]; pkg != "" {
			out[p] = pkg
		}
	}
	return out, f.err
}

// The administrator goes back to the version put back (a downgrade): its
// package ships /usr/src/M-V and re-adds it, and builds it for a new
// kernel. Dropping the last kept build (its kernel removed) must leave
// the package's version alone: no dkms remove --all, no rm -rf.
func TestDropKeepsVersionAPackageShipsAgain(t *testing.T) {
	e := keptUpgrade(t)
	own := &fakeOwners{owners: map[string]string{}}
	e.k.Owners = own
	e.result(k1, "wifi", "2.0", state.Failed)
	e.result(k2, "wifi", "2.0", state.Failed)
	e.settle(Options{})
	e.calls()
	e.said()
	// apt install wifi-dkms=1.0: 2.0's prerm removes it, 1.0's postinst
	// re-adds 1.0 over /usr/src/wifi-1.0 and builds it for k3 too.
	e.upgradeRemoves("wifi", "2.0")
	const k3 = "6.1.0-60-amd64"
	must(t, os.MkdirAll(filepath.Join(e.p.ModulesDir(), k3), 0o755))
	e.install("wifi", "1.0", k3)
	own.owners["/usr/src/wifi-1.0"] = "wifi-dkms"
	e.settle(Options{})
	e.calls()
	e.said()

	for _, k := range []string{k1, k2} {
		must(t, os.RemoveAll(filepath.Join(e.p.ModulesDir(), k)))
		must(t, e.k.DropKernel(context.Background(), e.st, k))
	}
	eq(t, "calls", e.calls(), "")
	if !strings.Contains(e.said(), "N: dkms-guard: left wifi/1.0 in place: its package wifi-dkms ships it again") {
		t.Error("not said")
	}
	eq(t, "installed for k3", e.installed("wifi", k3), "1.0")
	if !e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("removed the package's /usr/src/wifi-1.0")
	}
	eq(t, "kept", len(e.kept().Builds), 0)
	eq(t, "archives", e.archives(), "")

	// dpkg-query failing is no licence to remove either.
	e2 := keptUpgrade(t)
	e2.k.Owners = &fakeOwners{err: errors.New("dpkg-query -S: exit status 2")}
	e2.settle(Options{})
	e2.calls()
	e2.said()
	must(t, os.RemoveAll(filepath.Join(e2.p.ModulesDir(), k1)))
	must(t, os.RemoveAll(filepath.Join(e2.p.ModulesDir(), k2)))
	e2.settle(Options{})
	eq(t, "calls when dpkg-query fails", e2.calls(), "")
	if !e2.exists(filepath.Join(e2.p.SourceTree(), "wifi-1.0")) || len(e2.kept().Builds) != 2 {
		t.Error("removed a version it could not tell unowned")
	}
}

// A kernel's build kept binaries-only, whose version is removed before
// it is put back (its package removed, or upgraded away, in the same
// apt run as the kernel's reinstall): never loaded without its source
// (dkms 3.2 would make a stub it can neither list nor remove, and bring
// back a module the administrator removed), dropped quietly.
func TestKernelKeptVersionRemoved(t *testing.T) {
	e := kernelKept(t)
	e.upgradeRemoves("hello", "1.0")
	put := e.settle(Options{Kernels: []string{k1}})
	if len(put) != 0 {
		t.Errorf("put back %+v", put)
	}
	eq(t, "calls", e.calls(), "")
	eq(t, "said", e.said(), "")
	eq(t, "kept", len(e.kept().Builds), 0)
	eq(t, "archives", e.archives(), "")
	if e.exists(filepath.Join(e.p.DKMSTree(), "hello", "1.0")) {
		t.Error("hello/1.0 is back in dkms's tree")
	}
}

// A kept.json that cannot be read (corrupt, or from a newer dkms-guard)
// is set aside with a W: line; the archives it listed are all that is
// left of those builds, so no later sweep takes them, whatever is kept
// since. Removing dkms-guard takes them.
func TestCorruptKeptKeepsArchives(t *testing.T) {
	e := keptUpgrade(t)
	must(t, os.WriteFile(filepath.Join(e.p.StateDir(), state.KeptFile), []byte(`{"schema": 99, "builds": []}`), 0o600))
	e.settle(Options{})
	if said := e.said(); !strings.Contains(said, "W: dkms-guard: ignored") {
		t.Errorf("said %q", said)
	}
	eq(t, "archives", e.archives(), []string{"wifi-1.0-" + k1 + ".dkms.tar.gz", "wifi-1.0-" + k2 + ".dkms.tar.gz"})

	// A later upgrade keeps another build, whose upgrade then works:
	// settled, kept.json is saved again; the old archives stay.
	e.add("hello", "1.0")
	e.install("hello", "1.0", k1)
	e.keep(Want{Module: "hello", Version: "1.0", Kernels: []string{k1}})
	e.settle(Options{})
	if !e.exists(filepath.Join(e.p.StateDir(), state.KeptFile)) {
		t.Error("no kept.json saved")
	}
	eq(t, "archives later", e.archives(), []string{"wifi-1.0-" + k1 + ".dkms.tar.gz", "wifi-1.0-" + k2 + ".dkms.tar.gz"})

	must(t, e.k.DropAll(context.Background(), e.st))
	if e.exists(e.p.KeptDir()) {
		t.Error("drop-kept left the kept directory")
	}
}

// Removing dkms-guard leaves a put-back build installed even when another
// kernel's build of the same version was never put back (its ldtarball
// failed): dropping that one must not dkms remove --all the version.
func TestDropAllPartlyPutBack(t *testing.T) {
	e := keptUpgrade(t)
	e.dkms.fail["ldtarball --force wifi-1.0-"+k2+".dkms.tar.gz"] = errors.New("exit status 1")
	e.settle(Options{})
	e.calls()
	e.said()
	eq(t, "installed for k1", e.installed("wifi", k1), "1.0")
	must(t, e.k.DropAll(context.Background(), e.st))
	eq(t, "calls", e.calls(), "")
	eq(t, "installed for k1 after", e.installed("wifi", k1), "1.0")
	if !e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("removed the source of a build that stays installed")
	}
	if e.exists(e.p.KeptDir()) {
		t.Error("kept directory left")
	}
}

// A version put back that a kernel still has installed (by hand, or put
// back by a run that crashed before saving kept.json) is left to that
// kernel when its last kept build is dropped: no dkms remove --all.
func TestDropLeavesVersionStillInstalled(t *testing.T) {
	e := keptUpgrade(t)
	e.settle(Options{})
	e.calls()
	e.said()
	const k3 = "6.1.0-60-amd64"
	must(t, os.MkdirAll(filepath.Join(e.p.ModulesDir(), k3), 0o755))
	e.install("wifi", "1.0", k3) // dkms install -m wifi -v 1.0 -k k3, by hand
	e.add("wifi", "3.0")
	e.install("wifi", "3.0", k1)
	e.install("wifi", "3.0", k2)
	e.settle(Options{})
	eq(t, "calls", e.calls(), []string{"remove wifi/1.0 -k " + k1, "remove wifi/1.0 -k " + k2})
	if said := e.said(); !strings.Contains(said, "N: dkms-guard: left wifi/1.0 installed for "+k3+", where no other version is") {
		t.Errorf("said %q", said)
	}
	eq(t, "installed for k3", e.installed("wifi", k3), "1.0")
	if !e.exists(filepath.Join(e.p.SourceTree(), "wifi-1.0")) {
		t.Error("removed the source k3's build needs")
	}
	eq(t, "kept", len(e.kept().Builds), 0)
}

// A new package revision of the same module version (a Debian stable
// update: wifi-dkms 1.0-1 -> 1.0-1+deb12u1) fails on one kernel: the
// kept build goes back there, but /usr/src/wifi-1.0 stays the new
// revision's (dkms's ldtarball --force would copy the old one over it,
// and every later kernel would build from it).
func TestPutBackKeepsNewRevisionSource(t *testing.T) {
	e := keptUpgrade(t)
	must(t, os.RemoveAll(filepath.Join(e.p.DKMSTree(), "wifi", "2.0")))
	e.add("wifi", "1.0") // the new revision, added again by its postinst
	patched := filepath.Join(e.p.SourceTree(), "wifi-1.0", "fix-for-6.12.patch")
	must(t, os.WriteFile(patched, []byte("new revision"), 0o644))
	e.install("wifi", "1.0", k2) // builds on k2, fails on k1
	e.result(k1, "wifi", "1.0", state.Failed)
	e.settle(Options{})
	eq(t, "said", e.said(), "E: dkms-guard: wifi/1.0 failed for "+k1+" (log: /var/log/dkms-guard/"+k1+"/wifi-1.0.log); kept its build from before the upgrade for it, which stays until a newer version of wifi installs")
	eq(t, "calls", e.calls(), []string{"ldtarball --force wifi-1.0-" + k1 + ".dkms.tar.gz", "install --force wifi/1.0/" + k1, "depmod " + k1})
	eq(t, "installed for k1", e.installed("wifi", k1), "1.0")
	if !e.exists(patched) {
		t.Error("the new revision's source was replaced by the kept one")
	}
	if e.exists(e.k.asideDir("wifi", "1.0")) {
		t.Error("aside directory left")
	}
	for _, b := range e.kept().Builds {
		if b.OwnsSource {
			t.Errorf("owns the package's source: %+v", b)
		}
	}

	// A put-back killed during the load left the package's directory
	// aside: the next settle moves it back.
	must(t, os.Rename(filepath.Join(e.p.SourceTree(), "wifi-1.0"), e.k.asideDir("wifi", "1.0")))
	must(t, os.MkdirAll(filepath.Join(e.p.SourceTree(), "wifi-1.0"), 0o755))
	e.said()
	e.settle(Options{})
	if !e.exists(patched) || e.exists(e.k.asideDir("wifi", "1.0")) {
		t.Error("not moved back")
	}
	if said := e.said(); !strings.Contains(said, "W: dkms-guard: moved /usr/src/wifi-1.0 back, after a put-back of wifi/1.0 that was interrupted") {
		t.Errorf("said %q", said)
	}
}

// A kernel's binaries-only kept build, not put back yet, that an upgrade
// wants with its source: a failed mktarball leaves the old archive there
// and listed.
func TestKeepSourceOverBinariesFails(t *testing.T) {
	e := newEnv(t, k1)
	e.add("hello", "1.0")
	e.install("hello", "1.0", k1)
	must(t, os.MkdirAll(e.p.KernelHookDir("preinst"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.p.KernelHookDir("preinst"), "dkms"), nil, 0o755))
	e.k.KeepKernel(context.Background(), e.st, e.tree(), k1)
	e.calls()
	up := Want{Module: "hello", Version: "1.0", Package: "hello-dkms", Kernels: []string{k1}, Why: state.KeptForUpgrade}
	e.dkms.fail["mktarball hello/1.0/"+k1] = errors.New("exit status 9")
	e.keep(up)
	e.said()
	kept := e.kept()
	if len(kept.Builds) != 1 || kept.Builds[0].Source || !e.exists(filepath.Join(e.p.KeptDir(), kept.Builds[0].Archive)) {
		t.Fatalf("kept %+v, archives %v", kept.Builds, e.archives())
	}

	// It works the next time: the archive with the source replaces it.
	delete(e.dkms.fail, "mktarball hello/1.0/"+k1)
	e.keep(up)
	kept = e.kept()
	if len(kept.Builds) != 1 || !kept.Builds[0].Source || !e.exists(filepath.Join(e.p.KeptDir(), kept.Builds[0].Archive)) {
		t.Fatalf("kept %+v, archives %v", kept.Builds, e.archives())
	}
	e.settle(Options{}) // still installed: dropped, and the old archive swept
	eq(t, "archives", e.archives(), "")
}
