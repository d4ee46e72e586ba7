package results

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Describe is a result's outcome as the summary and status show it.
func Describe(r state.Result) string {
	switch r.Outcome {
	case state.Installed:
		if r.Reason != "" {
			return "installed (" + report.Text(r.Reason) + ")"
		}
		return "installed"
	case state.Unsupported:
		return "unsupported: " + report.Text(r.Reason)
	case state.Skipped:
		return "not built: " + report.Text(r.Reason)
	case state.Failed:
		s := "FAILED (" + report.Text(r.Reason) + ")"
		if r.Log != "" {
			s += ", log " + report.Name(r.Log)
		}
		return s
	}
	return report.Name(string(r.Outcome))
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
		fmt.Fprintf(tw, "%s%s\t%s\t%s%s\n", prefix, report.Name(r.Kernel), report.MV(r.Module, r.Version), Describe(r), mark)
	}
	tw.Flush()
}

// SafeToBoot lists the kernels that have all their DKMS modules: among the
// bootable ones when any kernel has an image (a chroot may have none).
func SafeToBoot(view []Kernel) []string {
	anyBootable := false
	for _, k := range view {
		anyBootable = anyBootable || k.Bootable
	}
	var out []string
	for _, k := range view {
		if k.Complete() && (k.Bootable || !anyBootable) {
			out = append(out, report.Name(k.Kernel))
		}
	}
	return out
}

// Summary prints what happened (rows) and where that leaves each kernel:
// which one is safe to boot, what is missing where, how to retry, and the
// boot lines (which kernel the next boot uses, when that needs saying). It
// prints nothing when there is nothing to say, so that most apt runs stay
// quiet.
func Summary(r *report.Reporter, title string, rows []state.Result, view []Kernel, boot []string, notice string) {
	lacking := 0
	for _, k := range view {
		if len(k.Lacks()) > 0 {
			lacking++
		}
	}
	if len(rows) == 0 && lacking == 0 && len(boot) == 0 {
		return
	}
	if len(rows) > 0 {
		r.Notef("%s:", title)
		var buf bytes.Buffer
		Table(&buf, "  ", rows)
		r.Notef("%s", strings.TrimRight(buf.String(), "\n"))
	}
	for _, l := range boot {
		r.Notef("%s", lowerFirst(strings.TrimSuffix(l, ".")))
	}
	if lacking == 0 {
		return
	}
	for _, k := range view {
		lacks := k.Lacks()
		if len(lacks) == 0 {
			continue
		}
		var names []string
		for _, l := range lacks {
			names = append(names, report.MV(l.Module, l.Version))
		}
		r.Notef("%s lacks %s; other kernels' modules and initramfs were not touched", report.Name(k.Kernel), strings.Join(names, ", "))
	}
	if safe := SafeToBoot(view); len(safe) > 0 {
		r.Notef("kernels with all their DKMS modules, safe to boot: %s", strings.Join(safe, ", "))
	} else {
		r.Notef("no kernel has all its DKMS modules: keep the running kernel until a rebuild succeeds")
	}
	for _, k := range view {
		if len(k.Lacks()) > 0 {
			r.Notef("retry once the cause is fixed: dkms-guard rebuild --kernel %s", report.Name(k.Kernel))
		}
	}
	r.Notef("details: dkms-guard status; notice: %s", notice)
}

// lowerFirst makes a sentence a message line (lowercase, apt's style).
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// Notice is the text of the notification file, nil when no kernel lacks a
// module because its build failed and the next boot (boot) and the other
// notes (notes: Secure Boot's) need no saying. It is for any user of the
// machine: plain words, every path.
func Notice(view []Kernel, boot []string, self string, notes ...string) []byte {
	var b bytes.Buffer
	for _, k := range view {
		for _, l := range k.Lacks() {
			if b.Len() == 0 {
				b.WriteString("dkms-guard: some kernels lack DKMS modules because they did not build.\n\n")
			}
			fmt.Fprintf(&b, "%s lacks %s: %s\n", report.Name(k.Kernel), report.MV(l.Module, l.Version), report.Text(l.Why))
		}
	}
	if b.Len() == 0 && len(boot) == 0 {
		return notesOnly(notes, self)
	}
	if b.Len() == 0 {
		b.WriteString("dkms-guard: a kernel lacks a boot-critical DKMS module.\n")
	}
	b.WriteString("\n")
	for _, l := range boot {
		b.WriteString(l + "\n")
	}
	for _, l := range notes {
		b.WriteString(l + "\n")
	}
	if safe := SafeToBoot(view); len(safe) > 0 {
		fmt.Fprintf(&b, "Kernels with all their DKMS modules (safe to boot): %s\n", strings.Join(safe, ", "))
	}
	b.WriteString("Other kernels' modules and initramfs were not touched.\n")
	b.WriteString("Retry, as root, once the cause is fixed: dkms-guard rebuild\n")
	b.WriteString("Details: dkms-guard status\n")
	fmt.Fprintf(&b, "This file (%s) goes away once every kernel has its modules.\n", self)
	return b.Bytes()
}

// Status writes the status listing: the last apt run's summary, then every
// kernel with what it has and lacks.
func Status(w io.Writer, last *state.LastRun, view []Kernel) {
	if last == nil {
		fmt.Fprintln(w, "Last apt run: none recorded")
	} else {
		fmt.Fprintf(w, "Last apt run: %s\n", last.Time.Format("2006-01-02 15:04:05 UTC"))
		for _, in := range last.Interrupted {
			fmt.Fprintf(w, "  (it also covers the interrupted apt run of %s: %s)\n", in.Started.Format("2006-01-02 15:04:05 UTC"), report.Text(in.Why))
		}
		Table(w, "  ", last.Rows)
	}
	fmt.Fprintln(w)
	if len(view) == 0 {
		fmt.Fprintln(w, "Kernels: none in /lib/modules")
		return
	}
	fmt.Fprintln(w, "Kernels:")
	for _, v := range view {
		var tags []string
		if v.Running {
			tags = append(tags, "running")
		}
		if !v.Headers {
			tags = append(tags, "no headers")
		}
		tag := ""
		if len(tags) > 0 {
			tag = " (" + strings.Join(tags, ", ") + ")"
		}
		have := "none"
		if len(v.Installed) > 0 {
			have = strings.Join(v.Installed, ", ")
		}
		fmt.Fprintf(w, "  %s%s: has %s\n", report.Name(v.Kernel), tag, have)
		for _, m := range v.Missing {
			fmt.Fprintf(w, "    lacks %s: %s\n", report.MV(m.Module, m.Version), report.Text(m.Why))
		}
	}
}
