package boot

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/bootloader"
	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Status is the boot part of `dkms-guard status`. Its fields are values;
// Print quotes them.
type Status struct {
	Next   string `json:"next_boot"`
	Pinned string `json:"pinned,omitempty"`
	// Loader and Where say how Pinned is pinned, as boot.json has them.
	Loader string `json:"loader,omitempty"`
	Where  string `json:"where,omitempty"`
	// Overridden is the default entry grub.cfg holds instead of Pinned,
	// as the last decision found it: a later GRUB_DEFAULT won.
	Overridden string `json:"overridden_by,omitempty"`
	// Unrecorded is set when dkms-guard's GRUB snippet is in place but
	// boot.json does not record it: the next decision reconciles them.
	Unrecorded bool `json:"unrecorded_pin,omitempty"`
	// Critical is Needed's boot-critical modules with their reasons (the
	// field older consumers read).
	Critical map[string][]string `json:"critical"`
	// Needed is every module that keeps an older kernel the default when
	// the newest lacks it: its class ("boot-critical", "in-use") and why.
	Needed  Needs                 `json:"needed"`
	Lacking map[string][]state.MV `json:"lacking,omitempty"`
	Managed bool                  `json:"managed"`
	// KeepFor is KEEP_KERNEL_FOR: which classes keep a kernel.
	KeepFor config.KeepFor `json:"keep_kernel_for"`
	// Waived is the kernel the administrator took with dkms-guard unpin,
	// and what it lacked then.
	Waived *state.Waiver `json:"waived,omitempty"`
}

// Show works out the boot part of status, reading only: the recorded pin
// (rec, nil when none) and a fresh decision, critical modules included.
func (k *Keeper) Show(ctx context.Context, view []results.Kernel, rec *state.Boot) Status {
	if rec == nil {
		rec = &state.Boot{}
	}
	cached := *rec // Decide refreshes the initramfs cache; status writes nothing
	d := k.decide(ctx, view, "", &cached, true)
	s := Status{Next: d.Newest, Critical: d.Needs.Of(BootCritical), Needed: d.Needs, Lacking: d.Lacking,
		Managed: d.Settings.ManageBoot, KeepFor: d.Settings.KeepFor}
	if d.Waived {
		s.Waived = rec.Waived
	}
	if rec.Pinned != "" {
		s.Pinned, s.Loader, s.Where, s.Overridden = rec.Pinned, rec.Loader, rec.Where, rec.Overridden
		if rec.Overridden == "" {
			s.Next = rec.Pinned
		}
	} else if bootloader.GrubPinned(k.Paths) {
		s.Unrecorded, s.Loader, s.Where = true, "GRUB", k.Paths.Rel(k.Paths.GrubPin())
	}
	return s
}

// Print writes s for people.
func (s Status) Print(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Boot:")
	switch {
	case s.Next == "":
		fmt.Fprintln(w, "  next boot: no kernel image in /boot")
	case s.Overridden != "":
		fmt.Fprintf(w, "  next boot: grub.cfg's default entry %s, not %s, which dkms-guard set (%s)\n", report.Name(s.Overridden), report.Name(s.Pinned), s.pinnedBy())
	case s.Pinned != "":
		fmt.Fprintf(w, "  next boot: %s, kept the default by dkms-guard (%s)\n", report.Name(s.Next), s.pinnedBy())
	case s.Unrecorded:
		fmt.Fprintf(w, "  next boot: the entry dkms-guard's pin names (%s), which boot.json does not record; the next apt run or kernel hook settles it\n", s.pinnedBy())
	default:
		fmt.Fprintf(w, "  next boot: %s (the bootloader's default, the newest kernel)\n", report.Name(s.Next))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Lacking)) {
		for _, class := range classes {
			var mvs []string
			for _, mv := range s.Lacking[k] {
				if s.Needed[mv.Module].Class == class {
					mvs = append(mvs, report.MV(mv.Module, mv.Version))
				}
			}
			if len(mvs) > 0 {
				fmt.Fprintf(w, "  %s lacks %s %s\n", report.Name(k), class, strings.Join(mvs, ", "))
			}
		}
	}
	if s.Waived != nil {
		fmt.Fprintf(w, "  %s was taken with dkms-guard unpin: no older kernel is kept the default for what it lacks until a newer kernel is installed or the modules build\n", report.Name(s.Waived.Kernel))
	}
	s.printNeeded(w)
	if !s.Managed {
		fmt.Fprintln(w, "  the default boot entry is not managed (MANAGE_BOOT_ENTRY=no)")
	}
}

// printNeeded lists, per class KEEP_KERNEL_FOR lets keep a kernel, the
// modules of that class and why.
func (s Status) printNeeded(w io.Writer) {
	switch s.KeepFor {
	case config.KeepNothing:
		fmt.Fprintf(w, "  no module keeps an older kernel the default (KEEP_KERNEL_FOR=%s)\n", s.KeepFor)
		return
	case config.KeepBootCritical:
		fmt.Fprintf(w, "  modules in use keep no older kernel the default (KEEP_KERNEL_FOR=%s)\n", s.KeepFor)
	}
	for _, class := range classes {
		if !keeps(s.KeepFor, class) {
			continue
		}
		of := s.Needed.Of(class)
		names := critical.Reasons(of).Names()
		if len(names) == 0 {
			fmt.Fprintf(w, "  %s DKMS modules: none\n", class)
		}
		for _, m := range names {
			fmt.Fprintf(w, "  %s: %s (%s)\n", class, report.Name(m), strings.Join(of[m], "; "))
		}
	}
}

// pinnedBy says how the pin is made, as the E: lines do: "GRUB:
// GRUB_DEFAULT in FILE", names from boot.json quoted.
func (s Status) pinnedBy() string {
	switch s.Loader {
	case "GRUB", "systemd-boot":
		return s.Loader + ": " + bootloader.Describe(s.Loader, s.Where)
	}
	return bootloader.Describe(s.Loader, s.Where)
}
