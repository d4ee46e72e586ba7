package results

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/metrics"
	"github.com/dkms-guard/dkms-guard/internal/notifier"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

var putBackAt = time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)

// keptMachine is wifi 1.0 put back for k2 (wifi 2.0 failed there) and k1
// (wifi 2.0 does not support it), with wifi 2.0 installed for k3; zfs 2.1
// was kept for k2 but not put back (still waiting), hello 0.9's kept
// build for k2 was replaced by hello 1.0.
func keptMachine(t *testing.T) (*Recorder, *state.Results, *bytes.Buffer) {
	t.Helper()
	p := paths.New(t.TempDir())
	add(t, p, "wifi", "1.0", "k2", "k1")
	add(t, p, "wifi", "2.0", "k3")
	add(t, p, "zfs", "2.1", "k3", "k2", "k1")
	add(t, p, "hello", "1.0", "k3", "k2", "k1")
	var out bytes.Buffer
	r := &Recorder{Paths: p, Report: report.New(&out), Chooser: chooser{}, Now: func() time.Time { return putBackAt }, Machine: machine{
		kernels:  []string{"k3", "k2", "k1"},
		headers:  map[string]bool{"k1": true, "k2": true, "k3": true},
		bootable: map[string]bool{"k1": true, "k2": true, "k3": true},
	}}
	all := &state.Results{}
	all.Put(state.Result{Kernel: "k3", Module: "wifi", Version: "2.0", Outcome: state.Installed})
	all.Put(state.Result{Kernel: "k2", Module: "wifi", Version: "2.0", Outcome: state.Failed, Exit: 2, Reason: "exit 2", Log: "/var/log/dkms-guard/k2/wifi-2.0.log", Severity: state.SevError})
	all.Put(state.Result{Kernel: "k1", Module: "wifi", Version: "2.0", Outcome: state.Unsupported, Reason: "BUILD_EXCLUSIVE_KERNEL"})
	st, err := state.Open(p, true, r.Report)
	must(t, err)
	defer st.Close()
	must(t, st.Save(state.KeptFile, &state.Kept{Schema: state.Schema, Builds: []state.KeptBuild{
		{Module: "wifi", Version: "1.0", Kernel: "k2", Archive: "wifi-1.0-k2.tar.gz", Size: 3 << 20, PutBack: putBackAt, Failed: "2.0", FailedLog: "/var/log/dkms-guard/k2/wifi-2.0.log"},
		{Module: "wifi", Version: "1.0", Kernel: "k1", Archive: "wifi-1.0-k1.tar.gz", Size: 1 << 20, PutBack: putBackAt, Failed: "2.0"},
		{Module: "zfs", Version: "2.1", Kernel: "k2", Archive: "zfs-2.1-k2.tar.gz", Size: 512},
		{Module: "hello", Version: "0.9", Kernel: "k2", Archive: "hello-0.9-k2.tar.gz", Size: 512, PutBack: putBackAt, Failed: "1.0"},
	}}))
	return r, all, &out
}

// A build put back is installed, not missing, and listed as kept with why
// its replacement is not installed; a build not put back, or replaced, is
// no news.
func TestViewKept(t *testing.T) {
	r, all, out := keptMachine(t)
	view, err := r.View(all)
	must(t, err)
	got := map[string]string{}
	for _, k := range view {
		var s []string
		for _, kp := range k.Kept {
			s = append(s, kp.Module+"/"+kp.Version+" for "+kp.Failed+": "+kp.Why+" ["+string(kp.Reason)+"] "+kp.Log)
		}
		got[k.Kernel] = strings.Join(k.Installed, ",") + " | " + strings.Join(s, "; ")
		if !k.Complete() {
			t.Errorf("%s lacks %+v", k.Kernel, k.Missing)
		}
	}
	want := map[string]string{
		"k3": "hello/1.0,wifi/2.0,zfs/2.1 | ",
		"k2": "hello/1.0,wifi/1.0,zfs/2.1 | wifi/1.0 for 2.0: FAILED (exit 2), log /var/log/dkms-guard/k2/wifi-2.0.log [build_failed] /var/log/dkms-guard/k2/wifi-2.0.log",
		"k1": "hello/1.0,wifi/1.0,zfs/2.1 | wifi/1.0 for 2.0: unsupported: BUILD_EXCLUSIVE_KERNEL [unsupported] ",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if safe := SafeToBoot(view); strings.Join(safe, ",") != "k3,k2,k1" {
		t.Errorf("safe to boot: %v", safe)
	}
	if out.Len() != 0 {
		t.Errorf("output:\n%s", out)
	}

	// Record reads kept.json through the store it holds; the caller's
	// copy (Recorder.Kept) wins over the file.
	st, err := state.Open(r.Paths, false, r.Report)
	must(t, err)
	defer st.Close()
	_, view, err = r.Record(context.Background(), st, nil, nil)
	must(t, err)
	if len(view[1].Kept) != 1 {
		t.Errorf("Record: k2 kept %+v", view[1].Kept)
	}
	r.Kept = &state.Kept{Schema: state.Schema}
	view, err = r.View(all)
	must(t, err)
	if len(view[1].Kept) != 0 {
		t.Errorf("with Recorder.Kept empty: k2 kept %+v", view[1].Kept)
	}
}

// Without the failed version's result (results.json moved aside), the
// kept build says what kept.json recorded.
func TestKeptWithoutResult(t *testing.T) {
	b := state.KeptBuild{Module: "wifi", Version: "1.0", Kernel: "k2", Failed: "2.0", FailedLog: "/var/log/w.log"}
	got := keptOf(b, &state.Results{}, true)
	if got.Failed != "2.0" || got.Why != "FAILED, log /var/log/w.log" || got.Reason != ReasonBuildFailed || got.Log != "/var/log/w.log" {
		t.Errorf("%+v", got)
	}
	b.FailedLog = ""
	if got := keptOf(b, &state.Results{}, true); got.Why != "did not install" || got.Reason != ReasonUnknown {
		t.Errorf("%+v", got)
	}
	b.Failed = ""
	if line := keptText(keptOf(b, &state.Results{}, true)); line != "the earlier build of wifi/1.0: the version to replace it did not install" {
		t.Errorf("line %q", line)
	}
	// A kernel rebuilt at the same version: the failed result is the kept version's.
	all := &state.Results{}
	all.Put(state.Result{Kernel: "k2", Module: "wifi", Version: "1.0", Outcome: state.Failed, Reason: "exit 1", Severity: state.SevWarning})
	b = state.KeptBuild{Module: "wifi", Version: "1.0", Kernel: "k2", Failed: "1.0"}
	kp := keptOf(b, all, true)
	if line := keptText(kp); line != "the earlier build of wifi/1.0: its rebuild FAILED (exit 1)" {
		t.Errorf("line %q", line)
	}
}

// A kept build alone makes a notice, told as kept, not as lacking, with
// the command that retries the newer version; the summary and status say
// it the same way.
func TestKeptNotice(t *testing.T) {
	r, all, _ := keptMachine(t)
	view, err := r.View(all)
	must(t, err)
	const self = "/var/lib/dkms-guard.notice"
	want := `dkms-guard: k2: kept a working build in place of one that did not install: wifi/1.0 (wifi/2.0 did not build)
dkms-guard: k1: kept a working build in place of one that did not install: wifi/1.0 (wifi/2.0 does not support it)
Details: /var/lib/dkms-guard.notice; as root: dkms-guard status

k2: kept an older version wifi/1.0: wifi/2.0 FAILED (exit 2), log /var/log/dkms-guard/k2/wifi-2.0.log
k1: kept an older version wifi/1.0: wifi/2.0 unsupported: BUILD_EXCLUSIVE_KERNEL

Kernels with all their DKMS modules (safe to boot): k3, k2, k1
Retry, as root, once the cause is fixed: dkms-guard rebuild --module wifi
An older build kept for a kernel the newer version does not support stays until a version that supports that kernel installs, or the kernel is removed.
This file (/var/lib/dkms-guard.notice) goes away once every kernel has its modules and no kept build stands in for one that did not install.
`
	if got := string(Notice(view, nil, self)); got != want {
		t.Errorf("notice:\n%s\nwant:\n%s", got, want)
	}

	var out bytes.Buffer
	Summary(report.New(&out), "DKMS modules in this apt run", nil, view, nil, self)
	wantSummary := `N: dkms-guard: k2: kept an older version wifi/1.0: wifi/2.0 FAILED (exit 2), log /var/log/dkms-guard/k2/wifi-2.0.log
N: dkms-guard: k1: kept an older version wifi/1.0: wifi/2.0 unsupported: BUILD_EXCLUSIVE_KERNEL
N: dkms-guard: retry once the cause is fixed: dkms-guard rebuild --module wifi
N: dkms-guard: details: dkms-guard status; notice: /var/lib/dkms-guard.notice
`
	if out.String() != wantSummary {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), wantSummary)
	}

	out.Reset()
	Status(&out, nil, view, KeptSpace(r.loadKept(nil), "/var/lib/dkms-guard/kept"))
	wantStatus := `Last apt run: none recorded

Kernels:
  k3: has hello/1.0, wifi/2.0, zfs/2.1
  k2: has hello/1.0, wifi/1.0, zfs/2.1
    kept an older version wifi/1.0: wifi/2.0 FAILED (exit 2), log /var/log/dkms-guard/k2/wifi-2.0.log
  k1 (running): has hello/1.0, wifi/1.0, zfs/2.1
    kept an older version wifi/1.0: wifi/2.0 unsupported: BUILD_EXCLUSIVE_KERNEL
Kept builds: 4 (3 of them put back), 4.0 MiB in /var/lib/dkms-guard/kept
`
	if out.String() != wantStatus {
		t.Errorf("status:\n%s\nwant:\n%s", out.String(), wantStatus)
	}

	// status --json: each kernel's kept builds.
	data, err := json.Marshal(view[1])
	must(t, err)
	if !strings.Contains(string(data), `"kept":[{"module":"wifi","version":"1.0","failed_version":"2.0","why":"FAILED (exit 2), log /var/log/dkms-guard/k2/wifi-2.0.log","reason":"build_failed","log":"/var/log/dkms-guard/k2/wifi-2.0.log"}]`) {
		t.Errorf("json: %s", data)
	}
	if data, _ := json.Marshal(view[0]); !strings.Contains(string(data), `"kept":[]`) {
		t.Errorf("json without kept builds: %s", data)
	}
}

// The headline stays within maxHeadline lines with many kernels lacking
// and keeping modules and a boot line.
func TestKeptHeadlineFits(t *testing.T) {
	kept := func(kernel string) Kernel {
		return Kernel{Kernel: kernel, Kept: []Kept{{Module: "wifi", Version: "1.0", Failed: "2.0", Why: "FAILED (exit 10)", Reason: ReasonBuildFailed}}}
	}
	view := []Kernel{failed("k5", "a"), failed("k4", "a"), kept("k3"), kept("k2"), kept("k1")}
	boot := []string{"The next boot uses kernel k3."}
	got := Headline(view, boot, "n")
	want := []string{
		"dkms-guard: 2 kernels lack DKMS modules that did not build: k5, k4",
		"dkms-guard: 3 kernels: kept a working build in place of one that did not install: k3, k2, k1",
		"The next boot uses kernel k3.",
		"Details: n; as root: dkms-guard status",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("headline:\n%s", strings.Join(got, "\n"))
	}
	notice := string(Notice(view, boot, "n"))
	for _, l := range []string{"k5 lacks a/1.0: FAILED (exit 10)\n", "k1: kept an older version wifi/1.0: wifi/2.0 FAILED (exit 10)\n", "Retry, as root, once the cause is fixed: dkms-guard rebuild\n"} {
		if !strings.Contains(notice, l) {
			t.Errorf("notice lacks %q:\n%s", l, notice)
		}
	}
}

// Every channel says a kept build: the notice, update-notifier's hook, and
// the metrics, whose last run failed while a build stands in for a newer
// version that failed, not for one that does not support the kernel.
func TestTellKept(t *testing.T) {
	r, all, out := keptMachine(t)
	p := r.Paths
	dir := p.Under(config.DefaultMetricsDir)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.MkdirAll(p.UpdateNotifierHooks(), 0o755))
	view, err := r.View(all)
	must(t, err)
	r.Tell(view, nil, "")
	if !paths.Exists(p.Notice()) {
		t.Error("no notice")
	}
	hook, err := os.ReadFile(filepath.Join(p.UpdateNotifierHooks(), notifier.HookName))
	must(t, err)
	if !strings.Contains(string(hook), "Description: dkms-guard: k2: kept a working build in place of one that did not install: wifi/1.0 (wifi/2.0 did not build)\n") {
		t.Errorf("hook:\n%s", hook)
	}
	prom, err := os.ReadFile(filepath.Join(dir, metrics.FileName))
	must(t, err)
	for _, l := range []string{
		`dkms_guard_module_kept{kernel="k2",module="wifi",version="1.0",failed_version="2.0"} 1`,
		`dkms_guard_module_kept{kernel="k1",module="wifi",version="1.0",failed_version="2.0"} 1`,
		"dkms_guard_last_run_success 0",
	} {
		if !strings.Contains(string(prom), l+"\n") {
			t.Errorf("metrics lack %s:\n%s", l, prom)
		}
	}
	if strings.Contains(string(prom), "dkms_guard_module_missing{") {
		t.Errorf("a kept build is missing:\n%s", prom)
	}

	// Only the unsupported one left: still said, but the last run succeeded.
	view[1].Kept = nil
	r.Tell(view, nil, "")
	prom, err = os.ReadFile(filepath.Join(dir, metrics.FileName))
	must(t, err)
	if !strings.Contains(string(prom), "dkms_guard_last_run_success 1\n") || !strings.Contains(string(prom), `kernel="k1"`) {
		t.Errorf("metrics:\n%s", prom)
	}
	if notice, _ := os.ReadFile(p.Notice()); strings.Contains(string(notice), "Retry") {
		t.Errorf("a retry for a version that does not support the kernel:\n%s", notice)
	}

	// None left: every channel goes quiet.
	view[2].Kept = nil
	r.Tell(view, nil, "")
	if paths.Exists(p.Notice()) || paths.Exists(filepath.Join(p.UpdateNotifierHooks(), notifier.HookName)) {
		t.Error("the notice or the hook stayed")
	}
	if out.Len() != 0 {
		t.Errorf("output:\n%s", out)
	}
}

// A kernel's own rebuild put back, or a new version not built for lack of
// headers, is said as what it is: no "older" build, no "newer" one, and
// no retry for the headers' own hook to do.
func TestKeptShortWords(t *testing.T) {
	for _, c := range []struct {
		kp   Kept
		want string
	}{
		{Kept{Module: "wifi", Version: "1.0", Failed: "1.0", Reason: ReasonBuildFailed}, "wifi/1.0 (its rebuild failed)"},
		{Kept{Module: "wifi", Version: "1.0", Failed: "2.0", Reason: ReasonNoHeaders}, "wifi/1.0 (wifi/2.0 not built: no headers)"},
		{Kept{Module: "wifi", Version: "1.0", Failed: "2.0", Reason: ReasonBuildFailed}, "wifi/1.0 (wifi/2.0 did not build)"},
	} {
		if got := keptShort(c.kp); got != c.want {
			t.Errorf("keptShort(%+v) = %q, want %q", c.kp, got, c.want)
		}
	}
	// A downgrade that failed: the build kept is the newer one.
	if got := keptText(Kept{Module: "wifi", Version: "3.0", Failed: "2.0", Why: "FAILED (exit 10)", Reason: ReasonBuildFailed}); got != "a newer version wifi/3.0: wifi/2.0 FAILED (exit 10)" {
		t.Errorf("keptText of a downgrade: %q", got)
	}
	view := []Kernel{{Kernel: "k1", Kept: []Kept{{Module: "wifi", Version: "1.0", Failed: "2.0", Reason: ReasonNoHeaders}}}}
	if got := retryKept(view); got != "" {
		t.Errorf("retry for a kernel without headers: %q", got)
	}
}

// With a kernel lacking a module too, the notice's one retry line is a
// plain rebuild: it tries what the kept builds stand in for as well.
func TestKeptNoticeOneRetry(t *testing.T) {
	view := []Kernel{
		{Kernel: "k2", Missing: []Missing{{Module: "hello", Version: "1.0", Why: "FAILED (exit 1)", Reason: ReasonBuildFailed, Failed: true}}},
		{Kernel: "k1", Kept: []Kept{{Module: "wifi", Version: "1.0", Failed: "2.0", Why: "FAILED (exit 2)", Reason: ReasonBuildFailed}}},
	}
	text := string(Notice(view, nil, "/var/lib/dkms-guard.notice"))
	if n := strings.Count(text, "Retry"); n != 1 || !strings.Contains(text, "Retry, as root, once the cause is fixed: dkms-guard rebuild\n") {
		t.Errorf("notice:\n%s", text)
	}
}
