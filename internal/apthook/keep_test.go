package apthook

import (
	"reflect"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Only what an upgrade or a reinstall removes is kept: the old package's
// prerm runs with "upgrade" for those (and for a downgrade, which is the
// administrator's choice, as a removal is: nothing kept).
func TestWants(t *testing.T) {
	tree := dkms.Tree{
		mod("wifi", "1.0", "k2", "k1"),
		mod("wifi", "0.9"), // added, installed nowhere: nothing to keep
		mod("zfs", "2.1", "k1"),
		mod("vbox", "7.0", "k1"),
		mod("mine", "1", "k1"), // no package ships it
	}
	owners := map[string]string{"wifi/1.0": "wifi-dkms", "wifi/0.9": "wifi-dkms", "zfs/2.1": "zfs-dkms", "vbox/7.0": "vbox-dkms"}
	for kind, want := range map[plan.Kind]bool{
		plan.Upgrade: true, plan.Reinstall: true, plan.Downgrade: false,
		plan.Install: false, plan.Configure: false, plan.Remove: false,
	} {
		got := wants([]plan.Change{{Package: "wifi-dkms", Kind: kind}, {Package: "mine", Kind: kind}}, tree, owners)
		if !want {
			if got != nil {
				t.Errorf("%s: kept %v", kind, got)
			}
			continue
		}
		w := []keep.Want{{Module: "wifi", Version: "1.0", Package: "wifi-dkms", Kernels: []string{"k1", "k2"}, Why: state.KeptForUpgrade}}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %+v, want %+v", kind, got, w)
		}
	}
}

func TestRemovedIn(t *testing.T) {
	run := &state.Run{Plan: &state.Plan{Changes: []plan.Change{
		{Package: "wifi-dkms", Kind: plan.Remove}, {Package: "zfs-dkms", Kind: plan.Upgrade},
	}}}
	if got := removedIn(run, nil); !reflect.DeepEqual(got, map[string]bool{"wifi-dkms": true}) {
		t.Errorf("removedIn = %v", got)
	}
	if got := removedIn(nil, nil); len(got) != 0 {
		t.Errorf("removedIn(nil) = %v", got)
	}
	// A package an interrupted run removed counts too: its kept build
	// must not be put back by the next run.
	gone := run.Interrupt("apt (pid 1) is gone")
	if got := removedIn(nil, []state.Interrupted{gone}); !reflect.DeepEqual(got, map[string]bool{"wifi-dkms": true}) {
		t.Errorf("removedIn(interrupted) = %v", got)
	}
}
