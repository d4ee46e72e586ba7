package apthook

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

type headersEverywhere struct{}

func (headersEverywhere) Kernels() ([]string, error) { return []string{"k"}, nil }
func (headersEverywhere) HasHeaders(string) bool     { return true }
func (headersEverywhere) BootID() string             { return "boot" }
func (headersEverywhere) Apt(parent int) host.Proc   { return host.Proc{PID: parent} }
func (headersEverywhere) Alive(host.Proc) bool       { return false }

// What "this run" attempted is left out of post-invoke's builds; when
// run.json is not this apt's there is no such run (nil), and a result
// recorded outside apt (no run id) is not mistaken for one of it.
func TestSortOutThisRun(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	src := filepath.Join(root, "usr/src/m-1.0")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "dkms.conf"), []byte("AUTOINSTALL=yes\n"), 0o644)
	os.MkdirAll(filepath.Join(p.DKMSTree(), "m", "1.0"), 0o755)
	if err := os.Symlink(src, filepath.Join(p.DKMSTree(), "m", "1.0", "source")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep := report.New(&out)
	b := &build.Builder{Paths: p, Report: rep, Now: time.Now}
	sess, err := b.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.End()
	h := &Hooks{Paths: p, Machine: headersEverywhere{}, Report: rep, Now: time.Now}
	for _, c := range []struct {
		name    string
		own     *state.Run
		prevRun string
		jobs    int
	}{
		{"failed earlier in this run", &state.Run{ID: "r1"}, "r1", 0},
		{"failed in another run", &state.Run{ID: "r1"}, "r0", 1},
		{"not this apt's run, a result from outside apt", nil, "", 1},
	} {
		before := &state.Results{}
		before.Put(state.Result{Kernel: "k", Module: "m", Version: "1.0", Outcome: state.Failed, Run: c.prevRun})
		rows, jobs := h.sortOut(sess, c.own, "k", []string{"m"}, before)
		if len(rows) != 0 || len(jobs) != c.jobs {
			t.Errorf("%s: rows %v, jobs %v", c.name, rows, jobs)
		}
	}
}
