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
)

// String names the class in messages ("lacks boot-critical zfs/2.1").
func (c Class) String() string {
	switch c {
	case BootCritical:
		return "boot-critical"
	}
	return fmt.Sprintf("BUG: class %d", int(c))
}

// Need is why the next boot needs one DKMS module: the strongest class
// any source gave it (the lowest value), and every reason given.
type Need struct {
	Class Class
	Why   []string
}

// Needs maps a DKMS module name to why the next boot needs it.
type Needs map[string]Need

// Add records that module is needed for class, for reasons why.
func (n Needs) Add(module string, class Class, why ...string) {
	need, ok := n[module]
	if !ok || class < need.Class {
		need.Class = class
	}
	need.Why = append(need.Why, why...)
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

// NeedsPin tells whether the newest kernel lacks a needed module.
func (d Decision) NeedsPin() bool { return d.Newest != "" && len(d.Lacking[d.Newest]) > 0 }

// why is the reason for a pin, for messages: "K lacks boot-critical M/V
// (in ...)", one group per class.
func (d Decision) why() string {
	var groups []string
	for _, class := range []Class{BootCritical} {
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

// lines says where the next boot stands, for the notice and the summary;
// none when all is well. next is the kernel the next boot uses, "" for
// an entry dkms-guard did not choose (the administrator's).
func (d Decision) lines(next string) []string {
	if !d.NeedsPin() {
		return nil
	}
	switch {
	case next == "":
		return []string{fmt.Sprintf("The next boot uses the administrator's default entry; %s: boot %s.", d.why(), report.Name(d.Keep))}
	case next == d.Newest:
		return []string{fmt.Sprintf("The next boot uses kernel %s, but %s: it will likely not boot.", report.Name(next), d.why())}
	}
	return []string{fmt.Sprintf("The next boot uses kernel %s: dkms-guard keeps it the default because %s.", report.Name(next), d.why())}
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
