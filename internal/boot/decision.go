package boot

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Class is why the next boot needs a DKMS module. Each class is one
// source of "this kernel must not become the default without it"; the
// decision treats them all alike and only the messages name them.
type Class int

const (
	// BootCritical: the machine cannot boot without it (package critical).
	BootCritical Class = iota + 1
	// InUse: the machine uses it, loaded now or at boot (package inuse);
	// it boots without it, but not as it worked. Said with W: lines.
	InUse
)

// classes lists the classes strongest first, as messages group them.
var classes = []Class{BootCritical, InUse}

// String names the class in messages ("lacks boot-critical zfs/2.1",
// "lacks in-use nvidia/535"), as KEEP_KERNEL_FOR spells it.
func (c Class) String() string {
	switch c {
	case BootCritical:
		return "boot-critical"
	case InUse:
		return "in-use"
	}
	return fmt.Sprintf("BUG: class %d", int(c))
}

// MarshalText makes a class its name in status --json.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// keeps tells whether KEEP_KERNEL_FOR lets class keep an older kernel
// the default.
func keeps(k config.KeepFor, class Class) bool {
	switch k {
	case config.KeepNothing:
		return false
	case config.KeepBootCritical:
		return class == BootCritical
	}
	return true
}

// Need is why the next boot needs one DKMS module: the strongest class
// any source gave it (the lowest value), and the reasons that class was
// given for (a boot-critical module is not also called in use).
type Need struct {
	Class Class    `json:"class"`
	Why   []string `json:"why"`
}

// Needs maps a DKMS module name to why the next boot needs it.
type Needs map[string]Need

// Add records that module is needed for class, for reasons why.
func (n Needs) Add(module string, class Class, why ...string) {
	need, ok := n[module]
	switch {
	case !ok || class < need.Class:
		need = Need{Class: class, Why: slices.Clone(why)}
	case class == need.Class:
		need.Why = append(need.Why, why...)
	}
	n[module] = need
}

// Of lists, sorted, the modules needed for class, with their reasons.
func (n Needs) Of(class Class) map[string][]string {
	out := map[string][]string{}
	for m, need := range n {
		if need.Class == class {
			out[m] = need.Why
		}
	}
	return out
}

// Decision is where the machine's next boot stands.
type Decision struct {
	Settings config.Settings
	Needs    Needs
	// Lacking maps each bootable kernel to the needed modules it lacks.
	Lacking map[string][]state.MV
	// Newest is the newest bootable kernel, what the bootloader picks by
	// default; Keep is the newest one lacking no needed module ("" when
	// every one lacks some).
	Newest, Keep string
	// Order is the bootable kernels, newest first.
	Order []string
	// Waived is set when the administrator took Newest with what it
	// lacks (dkms-guard unpin): no pin, though Newest lacks a module.
	Waived bool
	// waiverHolds is set while the administrator's waiver stands, needed
	// now or not: see holds.
	waiverHolds bool
	// SettingsFile names /etc/default/dkms-guard, for messages.
	SettingsFile string
}

// choose is the decision proper: bootable lists the kernels newest first,
// as the bootloader orders them; what each lacks of needs decides which
// is kept. Nothing here knows where a need came from.
func choose(bootable []results.Kernel, needs Needs) (lacking map[string][]state.MV, keep string) {
	lacking = map[string][]state.MV{}
	for _, v := range bootable {
		for _, m := range v.Missing {
			if _, ok := needs[m.Module]; ok {
				lacking[v.Kernel] = append(lacking[v.Kernel], state.MV{Module: m.Module, Version: m.Version})
			}
		}
		if keep == "" && len(lacking[v.Kernel]) == 0 {
			keep = v.Kernel
		}
	}
	return lacking, keep
}

// stillLacks marks kernel as lacking mvs after all, those of them the
// next boot needs (its initramfs could not be rebuilt with them), and
// chooses Keep again.
func (d *Decision) stillLacks(kernel string, mvs []state.MV) {
	for _, mv := range mvs {
		if _, ok := d.Needs[mv.Module]; ok && !slices.Contains(d.Lacking[kernel], mv) {
			d.Lacking[kernel] = append(d.Lacking[kernel], mv)
		}
	}
	d.Keep = ""
	if i := slices.IndexFunc(d.Order, func(k string) bool { return len(d.Lacking[k]) == 0 }); i >= 0 {
		d.Keep = d.Order[i]
	}
}

// NeedsPin tells whether the newest kernel lacks a needed module, and the
// administrator did not take it as it is.
func (d Decision) NeedsPin() bool { return d.lacks() && !d.Waived }

// lacks tells whether the newest kernel lacks a needed module.
func (d Decision) lacks() bool { return d.Newest != "" && len(d.Lacking[d.Newest]) > 0 }

// waive sets Waived when w, the administrator's waiver, covers the
// decision: Newest is still the kernel taken, and lacks no module but
// those it was taken without (by name: a new version of one of them
// that fails too changes nothing the administrator accepted).
func (d *Decision) waive(w *state.Waiver) {
	if w == nil || w.Kernel != d.Newest || !d.lacks() {
		return
	}
	for _, mv := range d.Lacking[d.Newest] {
		if !slices.ContainsFunc(w.Lacking, func(x state.MV) bool { return x.Module == mv.Module }) {
			return
		}
	}
	d.Waived = true
}

// holds tells whether w stands for newest, the newest bootable kernel:
// it is the kernel taken and still misses a module it was taken without.
// It stands even while no decision needs that module (it is not loaded
// for a while, as after booting the kernel taken, or KEEP_KERNEL_FOR
// changed for a while): the need coming back must not pin again. Only a
// newer kernel or the modules arriving end it.
func holds(w *state.Waiver, newest results.Kernel) bool {
	if w == nil || w.Kernel != newest.Kernel {
		return false
	}
	return slices.ContainsFunc(newest.Missing, func(m results.Missing) bool {
		return slices.ContainsFunc(w.Lacking, func(x state.MV) bool { return x.Module == m.Module })
	})
}

// strongest is the strongest class of what the newest kernel lacks.
func (d Decision) strongest() Class {
	best := Class(0)
	for _, mv := range d.Lacking[d.Newest] {
		if c := d.Needs[mv.Module].Class; best == 0 || c < best {
			best = c
		}
	}
	return best
}

// sayf is how a decision's message is said: E: while the newest kernel
// lacks a boot-critical module (the machine would not boot), W: when it
// lacks only modules in use (it boots, without them).
func (d Decision) sayf(r *report.Reporter) func(string, ...any) {
	if d.strongest() == BootCritical {
		return r.Errorf
	}
	return r.Warnf
}

// fate is what booting the newest kernel as it is means.
func (d Decision) fate() string {
	if d.strongest() == BootCritical {
		return "and will likely fail"
	}
	return "without them"
}

// anyway tells, for a pin kept only for modules in use, the two ways to
// boot the newest kernel all the same; "" otherwise.
func (d Decision) anyway() string {
	if d.strongest() != InUse {
		return ""
	}
	return fmt.Sprintf("; to boot %s anyway: dkms-guard unpin, or KEEP_KERNEL_FOR=boot-critical in %s",
		report.Name(d.Newest), d.SettingsFile)
}

// kept names the classes that keep a kernel, for "has all its ... DKMS
// modules".
func (d Decision) kept() string {
	var names []string
	for _, c := range classes {
		if keeps(d.Settings.KeepFor, c) {
			names = append(names, c.String())
		}
	}
	return strings.Join(names, " and ")
}

// why is the reason for a pin, for messages: "K lacks boot-critical M/V
// (in ...)", one group per class.
func (d Decision) why() string {
	var groups []string
	for _, class := range classes {
		var parts []string
		for _, mv := range d.Lacking[d.Newest] {
			if need := d.Needs[mv.Module]; need.Class == class {
				parts = append(parts, report.MV(mv.Module, mv.Version)+" ("+strings.Join(need.Why, "; ")+")")
			}
		}
		if len(parts) > 0 {
			groups = append(groups, class.String()+" "+strings.Join(parts, ", "))
		}
	}
	return fmt.Sprintf("%s lacks %s", report.Name(d.Newest), strings.Join(groups, "; "))
}

// lackingMVs lists what the newest kernel lacks, "M/V, M/V".
func (d Decision) lackingMVs() string {
	var mvs []string
	for _, mv := range d.Lacking[d.Newest] {
		mvs = append(mvs, report.MV(mv.Module, mv.Version))
	}
	return strings.Join(mvs, ", ")
}

// lines says where the next boot stands, for the notice and the summary;
// none when all is well. next is the kernel the next boot uses, "" for
// an entry dkms-guard did not choose (the administrator's).
func (d Decision) lines(next string) []string {
	switch {
	case d.Waived && d.strongest() == BootCritical:
		return []string{fmt.Sprintf("The next boot uses kernel %s although %s: the administrator took it (dkms-guard unpin): it will likely not boot.", report.Name(d.Newest), d.why())}
	case d.Waived:
		return []string{fmt.Sprintf("The next boot uses kernel %s although %s: the administrator took it (dkms-guard unpin).", report.Name(d.Newest), d.why())}
	case !d.NeedsPin():
		return nil
	case next == "":
		return []string{fmt.Sprintf("The next boot uses the administrator's default entry; %s: boot %s.", d.why(), report.Name(d.Keep))}
	case next == d.Newest && d.strongest() == BootCritical:
		return []string{fmt.Sprintf("The next boot uses kernel %s, but %s: it will likely not boot.", report.Name(next), d.why())}
	case next == d.Newest:
		return []string{fmt.Sprintf("The next boot uses kernel %s, but %s: it will boot without them.", report.Name(next), d.why())}
	}
	return []string{fmt.Sprintf("The next boot uses kernel %s: dkms-guard keeps it the default because %s%s.", report.Name(next), d.why(), d.anyway())}
}

// sameLacking tells whether two decisions found the same modules lacking.
func sameLacking(a, b map[string][]state.MV) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
