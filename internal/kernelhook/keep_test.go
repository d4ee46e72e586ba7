package kernelhook

import (
	"reflect"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

func TestInPlan(t *testing.T) {
	run := &state.Run{Plan: &state.Plan{Changes: []plan.Change{
		{Package: "wifi-dkms", Kind: plan.Upgrade}, {Package: "zfs-dkms", Kind: plan.Configure},
		{Package: "old-dkms", Kind: plan.Remove},
	}}}
	pending, removed := inPlan(run)
	if !reflect.DeepEqual(pending, map[string]bool{"wifi-dkms": true, "zfs-dkms": true}) || !reflect.DeepEqual(removed, map[string]bool{"old-dkms": true}) {
		t.Errorf("inPlan = %v, %v", pending, removed)
	}
	if p, r := inPlan(&state.Run{}); len(p) != 0 || len(r) != 0 {
		t.Errorf("no plan: %v, %v", p, r)
	}
}
