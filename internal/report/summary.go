package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dkms-guard/dkms-guard/internal/state"
)

// KernelState is one kernel's DKMS health.
type KernelState struct {
	Kernel   string
	Bootable bool           // /boot/vmlinuz-K exists
	Complete bool           // has every DKMS module it should: safe to boot
	Lacks    []state.Result // failed or skipped modules still not installed
}

// Describe is a result's outcome as the summary and status show it.
func Describe(r state.Result) string {
	switch r.Outcome {
	case state.Installed:
		if r.Reason != "" {
			return "installed (" + r.Reason + ")"
		}
		return "installed"
	case state.Unsupported:
		return "unsupported: " + r.Reason
	case state.Skipped:
		return "not built: " + r.Reason
	case state.Failed:
		s := "FAILED (" + r.Reason + ")"
		if r.Log != "" {
			s += ", log " + r.Log
		}
		return s
	}
	return string(r.Outcome)
}

// Table writes one row per kernel and module.
func Table(w io.Writer, prefix string, rows []state.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sKERNEL\tMODULE\tRESULT\n", prefix)
	for _, r := range rows {
		mark := ""
		if r.Outcome == state.Failed || r.Outcome == state.Skipped {
			switch r.Severity {
			case state.SevError:
				mark = " [E]"
			case state.SevWarning:
				mark = " [W]"
			}
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s%s\n", prefix, Name(r.Kernel), MV(r.Module, r.Version), Describe(r), mark)
	}
	tw.Flush()
}

// Summary prints what happened (rows) and where that leaves each kernel:
// which one is safe to boot, what is missing where, how to retry. It
// prints nothing when there is nothing to say, so that most apt runs stay
// quiet.
func Summary(r *Reporter, title string, rows []state.Result, ks []KernelState, notice string) {
	lacking := 0
	for _, k := range ks {
		if len(k.Lacks) > 0 {
			lacking++
		}
	}
	if len(rows) == 0 && lacking == 0 {
		return
	}
	if len(rows) > 0 {
		r.Notef("%s:", title)
		var buf bytes.Buffer
		Table(&buf, "  ", rows)
		r.Notef("%s", strings.TrimRight(buf.String(), "\n"))
	}
	if lacking == 0 {
		return
	}
	var complete []string
	for _, k := range ks {
		if k.Complete && (k.Bootable || !anyBootable(ks)) {
			complete = append(complete, k.Kernel)
		}
	}
	for _, k := range ks {
		if len(k.Lacks) == 0 {
			continue
		}
		var names []string
		for _, l := range k.Lacks {
			names = append(names, MV(l.Module, l.Version))
		}
		r.Notef("%s lacks %s; other kernels' modules and initramfs were not touched", Name(k.Kernel), strings.Join(names, ", "))
	}
	if len(complete) > 0 {
		r.Notef("kernels with all their DKMS modules, safe to boot: %s", strings.Join(complete, ", "))
	} else {
		r.Notef("no kernel has all its DKMS modules: keep the running kernel until a rebuild succeeds")
	}
	for _, k := range ks {
		if len(k.Lacks) > 0 {
			r.Notef("retry once the cause is fixed: dkms-guard rebuild --kernel %s", Name(k.Kernel))
		}
	}
	r.Notef("details: dkms-guard status; notice: %s", notice)
}

func anyBootable(ks []KernelState) bool {
	for _, k := range ks {
		if k.Bootable {
			return true
		}
	}
	return false
}

// Notice is the text of the notification file, nil when no kernel lacks a
// module. It is for any user of the machine: plain words, every path.
func Notice(ks []KernelState, self string) []byte {
	var b bytes.Buffer
	var complete []string
	for _, k := range ks {
		if k.Complete && (k.Bootable || !anyBootable(ks)) {
			complete = append(complete, k.Kernel)
		}
		if len(k.Lacks) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("dkms-guard: some kernels lack DKMS modules because they did not build.\n\n")
		}
		for _, l := range k.Lacks {
			fmt.Fprintf(&b, "%s lacks %s: %s\n", Name(k.Kernel), MV(l.Module, l.Version), Describe(l))
		}
	}
	if b.Len() == 0 {
		return nil
	}
	b.WriteString("\n")
	if len(complete) > 0 {
		fmt.Fprintf(&b, "Kernels with all their DKMS modules (safe to boot): %s\n", strings.Join(complete, ", "))
	}
	b.WriteString("Other kernels' modules and initramfs were not touched.\n")
	b.WriteString("Retry, as root, once the cause is fixed: dkms-guard rebuild\n")
	b.WriteString("Details: dkms-guard status\n")
	fmt.Fprintf(&b, "This file (%s) goes away once every kernel has its modules.\n", self)
	return b.Bytes()
}
