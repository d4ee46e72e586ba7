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
// which one is safe to boot, what is missing where, which older builds
// were kept in place of a newer version, how to retry, and the boot lines
// (which kernel the next boot uses, when that needs saying). It prints
// nothing when there is nothing to say, so that most apt runs stay quiet.
func Summary(r *report.Reporter, title string, rows []state.Result, view []Kernel, boot []string, notice string) {
	lacking, kept := 0, 0
	for _, k := range view {
		if len(k.Lacks()) > 0 {
			lacking++
		}
		kept += len(k.Kept)
	}
	if len(rows) == 0 && lacking == 0 && kept == 0 && len(boot) == 0 {
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
	if lacking == 0 && kept == 0 {
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
	for _, k := range view {
		for _, kp := range k.Kept {
			r.Notef("%s: kept %s", report.Name(k.Kernel), keptText(kp))
		}
	}
	if lacking > 0 {
		if safe := SafeToBoot(view); len(safe) > 0 {
			r.Notef("kernels with all their DKMS modules, safe to boot: %s", strings.Join(safe, ", "))
		} else {
			r.Notef("no kernel has all its DKMS modules: keep the running kernel until a rebuild succeeds")
		}
	}
	for _, k := range view {
		if len(k.Lacks()) > 0 {
			r.Notef("retry once the cause is fixed: dkms-guard rebuild --kernel %s", report.Name(k.Kernel))
		}
	}
	if retry := retryKept(view); retry != "" {
		r.Notef("retry once the cause is fixed: %s", retry)
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

// maxHeadline bounds the notice's opening paragraph: what a login shows
// (update-motd.d/95-dkms-guard prints it) and update-notifier's hook says.
const maxHeadline = 4

// Headline is the notice's opening paragraph, nil when there is no
// notice: which kernel lacks which modules, which runs an older build kept
// in place of a newer one, where the next boot stands, and where to read
// more, in at most maxHeadline lines.
func Headline(view []Kernel, boot []string, self string, notes ...string) []string {
	lines, _ := headline(view, boot, self)
	if lines == nil {
		return notesHeadline(notes, self)
	}
	return lines
}

// headline is Headline and how many of the boot lines it holds (the
// notice's body has the others).
func headline(view []Kernel, boot []string, self string) ([]string, int) {
	var lacking, lackingNames, kept, keptNames []string
	for _, k := range view {
		var mvs []string
		for _, l := range k.Lacks() {
			mvs = append(mvs, report.MV(l.Module, l.Version))
		}
		if len(mvs) > 0 {
			lacking = append(lacking, fmt.Sprintf("dkms-guard: %s lacks DKMS modules that did not build: %s", report.Name(k.Kernel), strings.Join(mvs, ", ")))
			lackingNames = append(lackingNames, report.Name(k.Kernel))
		}
		var olds []string
		for _, kp := range k.Kept {
			olds = append(olds, keptShort(kp))
		}
		if len(olds) > 0 {
			kept = append(kept, fmt.Sprintf("dkms-guard: %s: kept a working build in place of one that did not install: %s", report.Name(k.Kernel), strings.Join(olds, ", ")))
			keptNames = append(keptNames, report.Name(k.Kernel))
		}
	}
	if len(lacking) == 0 && len(kept) == 0 && len(boot) == 0 {
		return nil, 0
	}
	if len(lacking) == 0 && len(boot) > 0 {
		lacking = []string{"dkms-guard: a kernel lacks a DKMS module that is boot-critical or in use."}
	}
	fits := func() bool { return len(lacking)+len(kept)+len(boot)+1 <= maxHeadline }
	if len(lacking) > 1 && !fits() {
		lacking = []string{fmt.Sprintf("dkms-guard: %d kernels lack DKMS modules that did not build: %s", len(lackingNames), strings.Join(lackingNames, ", "))}
	}
	if len(kept) > 1 && !fits() {
		kept = []string{fmt.Sprintf("dkms-guard: %d kernels: kept a working build in place of one that did not install: %s", len(keptNames), strings.Join(keptNames, ", "))}
	}
	lines := append(lacking, kept...)
	shown := min(len(boot), maxHeadline-1-len(lines))
	lines = append(lines, boot[:shown]...)
	return append(lines, fmt.Sprintf("Details: %s; as root: dkms-guard status", self)), shown
}

// Notice is the text of the notification file, nil when no kernel lacks a
// module because its build failed, none runs an older build kept in place
// of a newer one, and the next boot needs no saying. It is for any user of
// the machine: plain words, every path. Its opening paragraph is the
// Headline.
func Notice(view []Kernel, boot []string, self string, notes ...string) []byte {
	head, shown := headline(view, boot, self)
	if head == nil {
		return notesOnly(notes, self)
	}
	var b bytes.Buffer
	b.WriteString(strings.Join(head, "\n") + "\n\n")
	lacking, kept := false, false
	for _, k := range view {
		for _, l := range k.Lacks() {
			fmt.Fprintf(&b, "%s lacks %s: %s\n", report.Name(k.Kernel), report.MV(l.Module, l.Version), report.Text(l.Why))
			lacking = true
		}
	}
	for _, k := range view {
		for _, kp := range k.Kept {
			fmt.Fprintf(&b, "%s: kept %s\n", report.Name(k.Kernel), keptText(kp))
			kept = true
		}
	}
	if lacking || kept {
		b.WriteString("\n")
	}
	for _, l := range boot[shown:] {
		b.WriteString(l + "\n")
	}
	for _, l := range notes {
		b.WriteString(l + "\n")
	}
	if safe := SafeToBoot(view); len(safe) > 0 {
		fmt.Fprintf(&b, "Kernels with all their DKMS modules (safe to boot): %s\n", strings.Join(safe, ", "))
	}
	// A kept build alone: its kernel's initramfs may have been updated
	// when it was put back, and rebuilding every kernel retries nothing.
	// A plain rebuild retries what the kept builds stand in for, too.
	if lacking || len(boot) > 0 {
		b.WriteString("Other kernels' modules and initramfs were not touched.\n")
		b.WriteString("Retry, as root, once the cause is fixed: dkms-guard rebuild\n")
	} else if retry := retryKept(view); retry != "" {
		fmt.Fprintf(&b, "Retry, as root, once the cause is fixed: %s\n", retry)
	}
	if keptUnsupported(view) {
		b.WriteString("An older build kept for a kernel the newer version does not support stays until a version that supports that kernel installs, or the kernel is removed.\n")
	}
	if kept {
		fmt.Fprintf(&b, "This file (%s) goes away once every kernel has its modules and no kept build stands in for one that did not install.\n", self)
	} else {
		fmt.Fprintf(&b, "This file (%s) goes away once every kernel has its modules.\n", self)
	}
	return b.Bytes()
}

// Status writes the status listing: the last apt run's summary, then every
// kernel with what it has, lacks and runs in place of a newer version,
// then the space kept builds take.
func Status(w io.Writer, last *state.LastRun, view []Kernel, space Space) {
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
	}
	if len(view) > 0 {
		fmt.Fprintln(w, "Kernels:")
	}
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
		for _, kp := range v.Kept {
			fmt.Fprintf(w, "    kept %s\n", keptText(kp))
		}
	}
	if s := space.String(); s != "" {
		fmt.Fprintf(w, "Kept builds: %s\n", s)
	}
}
