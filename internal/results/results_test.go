package results

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

type machine struct {
	kernels  []string
	headers  map[string]bool
	bootable map[string]bool
}

func (m machine) Kernels() ([]string, error) { return m.kernels, nil }
func (m machine) HasHeaders(k string) bool   { return m.headers[k] }
func (m machine) Bootable(k string) bool     { return m.bootable[k] }
func (m machine) Release() string            { return "k1" }

// chooser wants every module but "manual"; "broken" has no readable dkms.conf.
type chooser struct{}

func (chooser) Wanted(m dkms.Module, _ string) (bool, error) {
	switch m.Name {
	case "manual":
		return false, nil
	case "broken":
		return true, errors.New("reading dkms.conf: gone")
	}
	return true, nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// add puts module/version into the tree, installed for kernels.
func add(t *testing.T, p paths.Paths, name, version string, kernels ...string) {
	t.Helper()
	dir := filepath.Join(p.DKMSTree(), name, version)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.Symlink("/usr/src/"+name+"-"+version, filepath.Join(dir, "source")))
	for _, k := range kernels {
		must(t, os.Symlink(version+"/"+k+"/x86_64", filepath.Join(p.DKMSTree(), name, "kernel-"+k+"-x86_64")))
	}
}

func TestView(t *testing.T) {
	p := paths.New(t.TempDir())
	add(t, p, "hello", "1.0", "k1", "k2")
	add(t, p, "wifi", "2.0", "k1")
	add(t, p, "excl", "1")
	add(t, p, "manual", "1")
	add(t, p, "broken", "1")
	var out bytes.Buffer
	r := &Recorder{Paths: p, Report: report.New(&out), Chooser: chooser{}, Machine: machine{
		kernels:  []string{"k3", "k2", "k1"},
		headers:  map[string]bool{"k1": true, "k2": true},
		bootable: map[string]bool{"k1": true, "k2": true},
	}}
	all := &state.Results{}
	all.Put(state.Result{Kernel: "k2", Module: "wifi", Version: "2.0", Outcome: state.Failed, Reason: "exit 10", Log: "/var/log/x.log", Severity: state.SevError})
	all.Put(state.Result{Kernel: "k1", Module: "excl", Version: "1", Outcome: state.Unsupported, Reason: "BUILD_EXCLUSIVE"})
	all.Put(state.Result{Kernel: "k2", Module: "excl", Version: "1", Outcome: state.Unsupported, Reason: "BUILD_EXCLUSIVE"})
	// An old version's result does not hide the newest version: hello 0.9
	// was unsupported on k3, hello 1.0 is what counts now.
	all.Put(state.Result{Kernel: "k3", Module: "hello", Version: "0.9", Outcome: state.Unsupported, Reason: "BUILD_EXCLUSIVE"})
	view, err := r.View(all)
	must(t, err)
	got := map[string]string{}
	for _, k := range view {
		var s []string
		for _, m := range k.Missing {
			s = append(s, m.Module+": "+m.Why+" ["+string(m.Reason)+"]")
		}
		got[k.Kernel] = strings.Join(k.Installed, ",") + " | " + strings.Join(s, "; ")
	}
	want := map[string]string{
		"k1": "hello/1.0,wifi/2.0 | broken: cannot tell whether it is wanted: reading dkms.conf: gone [unknown]",
		"k2": "hello/1.0 | broken: cannot tell whether it is wanted: reading dkms.conf: gone [unknown]; wifi: FAILED (exit 10), log /var/log/x.log [build_failed]",
		"k3": " | broken: cannot tell whether it is wanted: reading dkms.conf: gone [unknown]; excl: not built: no headers for this kernel are installed [no_headers]; " +
			"hello: not built: no headers for this kernel are installed [no_headers]; wifi: not built: no headers for this kernel are installed [no_headers]",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if !view[2].Running || view[0].Running {
		t.Error("running kernel not marked")
	}
	if lacks := view[1].Lacks(); len(lacks) != 1 || lacks[0].Module != "wifi" {
		t.Errorf("k2 lacks %+v", lacks)
	}
	notice := string(Notice(view, nil, "/var/lib/dkms-guard.notice"))
	if !strings.Contains(notice, "k2 lacks wifi/2.0: FAILED (exit 10), log /var/log/x.log\n") || strings.Contains(notice, "broken") {
		t.Errorf("notice:\n%s", notice)
	}
}

func TestSafeToBoot(t *testing.T) {
	view := []Kernel{{Kernel: "new", Bootable: true, Missing: []Missing{{Module: "m", Failed: true}}}, {Kernel: "old", Bootable: true}, {Kernel: "headers-only"}}
	if got := SafeToBoot(view); len(got) != 1 || got[0] != "old" {
		t.Errorf("SafeToBoot = %v", got)
	}
	// A chroot without images: every complete kernel counts.
	chroot := []Kernel{{Kernel: "a"}, {Kernel: "b", Missing: []Missing{{Module: "m", Failed: true}}}}
	if got := SafeToBoot(chroot); len(got) != 1 || got[0] != "a" {
		t.Errorf("SafeToBoot in a chroot = %v", got)
	}
	if Notice([]Kernel{{Kernel: "a", Missing: []Missing{{Module: "m"}}}}, nil, "n") != nil {
		t.Error("a notice for a module that is only not built yet")
	}
}

// Without a usable store, Record still merges and returns a view.
func TestRecordWithoutStore(t *testing.T) {
	p := paths.New(t.TempDir())
	add(t, p, "hello", "1.0")
	r := &Recorder{Paths: p, Report: report.New(&bytes.Buffer{}), Chooser: chooser{}, Machine: machine{kernels: []string{"k1"}, headers: map[string]bool{"k1": true}}}
	before := &state.Results{}
	before.Put(state.Result{Kernel: "k0", Module: "old", Outcome: state.Installed})
	all, view, err := r.Record(context.Background(), nil, []state.Result{{Kernel: "k1", Module: "hello", Version: "1.0", Outcome: state.Failed}}, before)
	must(t, err)
	if len(all.Results) != 2 || len(view) != 1 || len(view[0].Lacks()) != 1 {
		t.Errorf("all %+v view %+v", all.Results, view)
	}
	if paths.Exists(p.Notice()) {
		t.Error("notice written without a store")
	}
}
