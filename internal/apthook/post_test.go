package apthook

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

func mod(name, version string, kernels ...string) dkms.Module {
	m := dkms.Module{Name: name, Version: version, Installed: map[string]string{}}
	for _, k := range kernels {
		m.Installed[k] = "x86_64"
	}
	return m
}

func TestSameTree(t *testing.T) {
	tree := dkms.Tree{mod("a", "1.0", "k1", "k2"), mod("b", "2.0")}
	snap := Snapshot(tree)
	if !sameTree(snap, tree) {
		t.Fatal("a tree differs from its own snapshot")
	}
	for name, other := range map[string]dkms.Tree{
		"module gone":     {mod("a", "1.0", "k1", "k2")},
		"version changed": {mod("a", "1.1", "k1", "k2"), mod("b", "2.0")},
		"kernel added":    {mod("a", "1.0", "k1", "k2"), mod("b", "2.0", "k3")},
		"kernel swapped":  {mod("a", "1.0", "k1", "k3"), mod("b", "2.0")},
		"module added":    {mod("a", "1.0", "k1", "k2"), mod("b", "2.0"), mod("c", "1")},
	} {
		if sameTree(snap, other) {
			t.Errorf("%s: counted as the same tree", name)
		}
	}
}

func TestChangedModules(t *testing.T) {
	run := &state.Run{
		ID:       "r1",
		Snapshot: []state.Module{{Name: "wifi", Version: "1.0"}, {Name: "hello", Version: "1.0"}, {Name: "gone", Version: "1"}, {Name: "half", Version: "1.0"}},
		Plan: &state.Plan{Changes: []plan.Change{
			{Package: "wifi-dkms", OldVersion: "1.0", NewVersion: "2.0", Kind: "upgrade"},
			{Package: "gone-dkms", OldVersion: "1", Kind: "remove"},
			{Package: "half-dkms", OldVersion: "1.0", NewVersion: "1.0", Kind: "configure"},
		}},
	}
	tree := dkms.Tree{mod("fresh", "0.1"), mod("gone", "1"), mod("half", "1.0"), mod("hello", "1.0"), mod("wifi", "2.0"), mod("vendor", "3")}
	owners := map[string]string{"wifi/2.0": "wifi-dkms", "hello/1.0": "hello-dkms", "gone/1": "gone-dkms", "half/1.0": "half-dkms", "fresh/0.1": "fresh-dkms"}
	got := changedModules(run, nil, tree, owners)
	want := map[string]string{
		"wifi":   "its package wifi-dkms was changed in this run: wifi-dkms 1.0 -> 2.0 (upgrade)",
		"half":   "its package half-dkms was changed in this run: half-dkms 1.0 (configure)",
		"fresh":  "its package fresh-dkms brought it in this run",
		"vendor": "vendor/3 appeared in this run",
	}
	if len(got) != len(want) {
		t.Errorf("changed = %v", got)
	}
	for m, why := range want {
		if got[m].why != why {
			t.Errorf("%s: %q, want %q", m, got[m].why, why)
		}
	}
	// A run that is not this apt's (its plan untrusted) changes nothing.
	if got := changedModules(nil, nil, tree, owners); len(got) != 0 {
		t.Errorf("untrusted run: %v", got)
	}
	// An interrupted run's changed packages still count: their builds
	// for every kernel were never finished.
	prev := []state.Interrupted{{Started: time.Unix(0, 0), Changed: []plan.Change{{Package: "hello-dkms", OldVersion: "1.0", NewVersion: "2.0", Kind: "upgrade"}}}}
	got = changedModules(nil, prev, tree, owners)
	if len(got) != 1 || got["hello"].why != "its package hello-dkms was changed in the interrupted apt run of 1970-01-01 00:00:00 UTC: hello-dkms 1.0 -> 2.0 (upgrade)" {
		t.Errorf("interrupted run: %v", got)
	}
}

// A kernel hook's warning about a module whose package changed becomes an
// error after dpkg, once; unchanged modules and fresh results stay as they are.
func TestEscalate(t *testing.T) {
	earlier := []state.Result{
		{Kernel: "k", Module: "wifi", Version: "2.0", Outcome: state.Failed, Reason: "exit 10", Log: "/l", Severity: state.SevWarning},
		{Kernel: "k", Module: "vendor", Version: "1", Outcome: state.Failed, Reason: "exit 10", Severity: state.SevWarning},
		{Kernel: "k", Module: "hello", Version: "1", Outcome: state.Installed},
		{Kernel: "k2", Module: "wifi", Version: "2.0", Outcome: state.Failed, Severity: state.SevWarning},
	}
	changed := map[string]change{"wifi": {why: "its package wifi-dkms was changed"}, "hello": {why: "x"}}
	fresh := []state.Result{{Kernel: "k2", Module: "wifi", Outcome: state.Installed}}
	var out bytes.Buffer
	got := escalate(earlier, changed, fresh, report.New(&out))
	if len(got) != 1 || got[0].Module != "wifi" || got[0].Kernel != "k" || got[0].Severity != state.SevError {
		t.Fatalf("escalated %+v", got)
	}
	if want := "E: dkms-guard: wifi/2.0: not installed for k: exit 10, see /l; its package wifi-dkms was changed\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if earlier[0].Severity != state.SevWarning {
		t.Error("escalate changed its input")
	}
	if strings.Contains(out.String(), "vendor") {
		t.Error("an unchanged module became an error")
	}
}
