package results

import (
	"strings"
	"testing"
)

func failed(kernel string, modules ...string) Kernel {
	k := Kernel{Kernel: kernel, Bootable: true}
	for _, m := range modules {
		k.Missing = append(k.Missing, Missing{Module: m, Version: "1.0", Why: "FAILED (exit 10)", Reason: ReasonBuildFailed, Failed: true})
	}
	return k
}

// The notice opens with a paragraph of at most four lines that a login
// shows: which kernel lacks what, the next boot, where to read more.
func TestHeadline(t *testing.T) {
	const self = "/var/lib/dkms-guard.notice"
	pin := "The next boot uses kernel k1: dkms-guard keeps it the default because k3 lacks boot-critical crit/1.0."
	for name, tc := range map[string]struct {
		view []Kernel
		boot []string
		want []string
	}{
		"nothing": {view: []Kernel{failed("k1")}},
		"one kernel": {
			view: []Kernel{failed("k2", "wifi", "vbox"), failed("k1")},
			want: []string{"dkms-guard: k2 lacks DKMS modules that did not build: wifi/1.0, vbox/1.0", "Details: " + self + "; as root: dkms-guard status"},
		},
		"pinned": {
			view: []Kernel{failed("k3", "crit"), failed("k1")},
			boot: []string{pin},
			want: []string{"dkms-guard: k3 lacks DKMS modules that did not build: crit/1.0", pin, "Details: " + self + "; as root: dkms-guard status"},
		},
		"boot only": {
			view: []Kernel{{Kernel: "k3", Missing: []Missing{{Module: "crit", Reason: ReasonNoHeaders}}}},
			boot: []string{pin},
			want: []string{"dkms-guard: a kernel lacks a DKMS module that is boot-critical or in use.", pin, "Details: " + self + "; as root: dkms-guard status"},
		},
		"many kernels": {
			view: []Kernel{failed("k4", "a"), failed("k3", "a"), failed("k2", "a")},
			boot: []string{pin},
			want: []string{"dkms-guard: 3 kernels lack DKMS modules that did not build: k4, k3, k2", pin, "Details: " + self + "; as root: dkms-guard status"},
		},
	} {
		got := Headline(tc.view, tc.boot, self)
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", name, got, tc.want)
		}
		notice := string(Notice(tc.view, tc.boot, self))
		if (notice == "") != (tc.want == nil) || (notice != "" && !strings.HasPrefix(notice, strings.Join(tc.want, "\n")+"\n\n")) {
			t.Errorf("%s: the notice does not open with the headline:\n%s", name, notice)
		}
	}
}

// Boot lines that do not fit the headline are in the notice's body.
func TestHeadlineTooManyBootLines(t *testing.T) {
	boot := []string{"First.", "Second.", "Third.", "Fourth."}
	view := []Kernel{failed("k2", "a")}
	if got := Headline(view, boot, "n"); len(got) != maxHeadline || got[1] != "First." || got[2] != "Second." {
		t.Errorf("headline %q", got)
	}
	notice := string(Notice(view, boot, "n"))
	for _, l := range boot {
		if strings.Count(notice, l+"\n") != 1 {
			t.Errorf("%q not said once in:\n%s", l, notice)
		}
	}
}
