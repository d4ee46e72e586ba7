package kernelhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// fakeDKMS records calls and answers per module.
type fakeDKMS struct {
	calls []string
	errs  map[string]error
}

func (f *fakeDKMS) Install(_ context.Context, m, v, k string, out io.Writer) error {
	f.calls = append(f.calls, m+"/"+v)
	fmt.Fprintln(out, "building", m)
	return f.errs[m]
}

func setup(t *testing.T, confs map[string]string) (*Engine, *fakeDKMS, dkms.Tree, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	p := paths.New(root)
	for name, conf := range confs {
		src := filepath.Join(root, "usr/src", name+"-1.0")
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "dkms.conf"), []byte(conf), 0o644)
		os.MkdirAll(filepath.Join(p.DKMSTree(), name, "1.0"), 0o755)
		os.Symlink(src, filepath.Join(p.DKMSTree(), name, "1.0", "source"))
	}
	tree, err := dkms.ReadTree(p.DKMSTree())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	f := &fakeDKMS{errs: map[string]error{}}
	e := &Engine{Paths: p, DKMS: f, Report: report.New(&out), Arch: "x86_64", By: "test",
		Now: func() time.Time { return time.Unix(0, 0) }}
	return e, f, tree, &out
}

func outcomes(rs []state.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Module+"="+string(r.Outcome))
	}
	return strings.Join(s, " ")
}

func TestBuildDependsOrder(t *testing.T) {
	e, f, tree, _ := setup(t, map[string]string{
		"app":  "AUTOINSTALL=yes\nBUILD_DEPENDS=\"core\"\n",
		"core": "AUTOINSTALL=yes\n",
		"lib":  "AUTOINSTALL=yes\nBUILD_DEPENDS=\"app\"\n",
		"off":  "AUTOINSTALL=\n",
	})
	rs := e.Autoinstall(context.Background(), tree, "6.1.0-56-amd64")
	if got := strings.Join(f.calls, " "); got != "core/1.0 app/1.0 lib/1.0" {
		t.Errorf("calls = %s", got)
	}
	if got := outcomes(rs); got != "core=installed app=installed lib=installed" {
		t.Errorf("outcomes = %s", got)
	}
}

func TestClassification(t *testing.T) {
	e, f, tree, out := setup(t, map[string]string{
		"bad":     "AUTOINSTALL=yes\n",
		"child":   "AUTOINSTALL=yes\nBUILD_DEPENDS=bad\n",
		"excl":    "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\n",
		"seventy": "AUTOINSTALL=yes\n",
		"slow":    "AUTOINSTALL=yes\n",
		"cyc1":    "AUTOINSTALL=yes\nBUILD_DEPENDS=cyc2\n",
		"cyc2":    "AUTOINSTALL=yes\nBUILD_DEPENDS=cyc1\n",
	})
	f.errs["bad"] = &dkms.ExitError{Code: 10}
	f.errs["seventy"] = &dkms.ExitError{Code: 77}
	f.errs["slow"] = &dkms.ExitError{Code: -1, TimedOut: true, Timeout: time.Minute}
	e.Severity = func(m string) state.Severity {
		if m == "bad" {
			return state.SevError
		}
		return state.SevNone
	}
	rs := e.Autoinstall(context.Background(), tree, "6.1.0-56-amd64")
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
	if r := got["slow"]; r.Outcome != state.Failed || !strings.Contains(r.Reason, "timed out after 1m0s") {
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
	log, _ := os.ReadFile(filepath.Join(e.Paths.Root, "var/log/dkms-guard/6.1.0-56-amd64/bad-1.0.log"))
	if !strings.Contains(string(log), "building bad") {
		t.Errorf("log = %q", log)
	}
}

// A cancelled context (SIGTERM to dkms-guard) stops before the next build.
func TestInterrupted(t *testing.T) {
	e, f, tree, _ := setup(t, map[string]string{"a": "AUTOINSTALL=yes\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rs := e.Autoinstall(ctx, tree, "k")
	if len(f.calls) != 0 || len(rs) != 1 || rs[0].Outcome != state.Skipped {
		t.Errorf("calls %v results %+v", f.calls, rs)
	}
}

// dkms may leave O_APPEND on the log's file description (shared with it as
// stdout); copying make.log must still work (copy_file_range would EBADF).
func TestAppendDKMSLogsToAppendOnlyLog(t *testing.T) {
	dir := t.TempDir()
	j := dkms.Module{Name: "m", Version: "1.0"}
	os.MkdirAll(filepath.Join(dir, "m/1.0/build"), 0o755)
	os.WriteFile(filepath.Join(dir, "m/1.0/build/make.log"), []byte("error: it broke\n"), 0o644)
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
	data, _ := os.ReadFile(logName)
	if !strings.Contains(string(data), "error: it broke") {
		t.Errorf("log = %q", data)
	}
}
