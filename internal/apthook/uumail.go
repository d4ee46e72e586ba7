package apthook

// Mail for unattended-upgrades' administrator. unattended-upgrades mails
// its report after the run; with MailReport "only-on-error" (or the older
// MailOnlyOnError "true") only when dpkg failed. Stock dkms's failed build
// fails the kernel package, so that administrator hears of it; dkms-guard
// keeps dpkg succeeding, so post-invoke mails the failure itself.
//
// NOTE(dkms-guard): unattended-upgrades 2.12 (Debian 13) has plugins
// (postrun), 2.9.1 (Debian 12) none; a mail from the hook works with both
// and is tested here, where a Python plugin would not be.

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/aptconf"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/mail"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// UUMail is what mailing unattended-upgrades' administrator needs.
type UUMail struct {
	Machine interface {
		UnattendedUpgrade(parent int) host.Proc
		Hostname() string
	}
	Config interface {
		Dump(ctx context.Context, keys ...string) (aptconf.Config, error)
	}
	Sender interface {
		Send(ctx context.Context, m mail.Message) error
	}
}

// onlyOnError is the report mode in which unattended-upgrades mails only
// when dpkg failed.
const onlyOnError = "only-on-error"

// reportMode is unattended-upgrades' send_summary_mail's mail_opt:
// MailReport, else the legacy MailOnlyOnError (default false), which maps
// to "only-on-error" or "on-change".
func reportMode(c aptconf.Config) string {
	if m := c.Get("Unattended-Upgrade::MailReport"); m != "" {
		return m
	}
	if c.Bool("Unattended-Upgrade::MailOnlyOnError", false) {
		return onlyOnError
	}
	return "on-change"
}

// mailFailures mails this step's failed builds (rows) that left a kernel
// without its module, when this apt run is unattended-upgrades' and it
// mails only its own errors. unattended-upgrades runs dpkg once per step
// (MinimalSteps), so one run may mail several times; what was mailed is
// remembered per unattended-upgrades process and never mailed twice.
// Trouble mailing is one W: line: the hook never fails for it.
func (h *Hooks) mailFailures(ctx context.Context, st *state.Store, rows []state.Result, view []results.Kernel, boot []string) {
	if h.Mail == nil {
		return
	}
	failed := failedBuilds(rows, view)
	if len(failed) == 0 {
		return
	}
	uu := h.Mail.Machine.UnattendedUpgrade(h.Parent)
	if uu.PID == 0 {
		return
	}
	cfg, err := h.Mail.Config.Dump(ctx, "Unattended-Upgrade")
	if err != nil {
		h.Report.Warnf("cannot tell whether to mail the failed builds to unattended-upgrades' administrator: %v", err)
		return
	}
	to := strings.TrimSpace(cfg.Get("Unattended-Upgrade::Mail"))
	if to == "" || reportMode(cfg) != onlyOnError {
		return // no mail wanted, or unattended-upgrades mails this run itself
	}
	sent := h.loadMailed(ctx, st, uu)
	failed = notSent(failed, sent.Sent)
	if len(failed) == 0 {
		return
	}
	from := cfg.Get("Unattended-Upgrade::Sender")
	if from == "" {
		from = "root"
	}
	msg := h.failureMail(from, to, failed, view, boot)
	if err := h.Mail.Sender.Send(ctx, msg); err != nil {
		h.Report.Warnf("cannot mail the failed builds to %s (Unattended-Upgrade::Mail): %v", report.Name(to), err)
		return
	}
	h.Report.Notef("mailed the failed builds to %s: unattended-upgrades mails only on its own errors (MailReport %q)", report.Name(to), onlyOnError)
	sent.Sent = append(sent.Sent, failed...)
	if err := st.Locked(ctx, func() error { return st.Save(state.MailedFile, &sent) }); err != nil {
		h.Report.Warnf("%v", err)
	}
}

// failedBuilds are the rows whose build failed (or timed out) and whose
// kernel still lacks the module.
func failedBuilds(rows []state.Result, view []results.Kernel) []state.Result {
	lacks := map[[2]string]bool{}
	for _, k := range view {
		for _, m := range k.Lacks() {
			lacks[[2]string{k.Kernel, m.Module}] = true
		}
	}
	var out []state.Result
	for _, r := range rows {
		if r.Outcome == state.Failed && lacks[[2]string{r.Kernel, r.Module}] {
			out = append(out, r)
		}
	}
	return out
}

// loadMailed is what was mailed during unattended-upgrades process uu;
// a record of another process or boot is replaced.
func (h *Hooks) loadMailed(ctx context.Context, st *state.Store, uu host.Proc) state.Mailed {
	var rec state.Mailed
	err := st.Locked(ctx, func() error {
		_, err := st.Load(state.MailedFile, &rec)
		return err
	})
	if err != nil {
		h.Report.Warnf("%v", err)
	}
	boot := h.Machine.BootID()
	if rec.Run != uu || rec.BootID != boot {
		rec = state.Mailed{Run: uu, BootID: boot}
	}
	rec.Schema = state.Schema
	return rec
}

func notSent(failed, sent []state.Result) []state.Result {
	var out []state.Result
	for _, r := range failed {
		dup := false
		for _, s := range sent {
			dup = dup || (s.Kernel == r.Kernel && s.Module == r.Module && s.Version == r.Version)
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}

// failureMail is the message: subject like unattended-upgrades' own, the
// failed builds with their logs, the next boot, how to retry.
func (h *Hooks) failureMail(from, to string, failed []state.Result, view []results.Kernel, boot []string) mail.Message {
	hostname := h.Mail.Machine.Hostname()
	if hostname == "" {
		hostname = "this machine"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "unattended-upgrades upgraded packages on %s, but some DKMS modules did not build.\n", hostname)
	b.WriteString("With stock dkms the upgrade would have failed and unattended-upgrades would have\n")
	fmt.Fprintf(&b, "mailed you; dkms-guard let it finish, so unattended-upgrades (MailReport %q)\n", onlyOnError)
	b.WriteString("mails nothing.\n\nNot built:\n")
	results.Table(&b, "  ", failed)
	b.WriteString("\nNext boot:\n")
	for _, l := range boot {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if safe := results.SafeToBoot(view); len(safe) > 0 {
		fmt.Fprintf(&b, "  Kernels with all their DKMS modules (safe to boot): %s\n", strings.Join(safe, ", "))
	} else {
		b.WriteString("  No kernel has all its DKMS modules: keep the running kernel until a rebuild succeeds.\n")
	}
	b.WriteString("\nOnce the cause is fixed, retry as root:\n")
	seen := map[string]bool{}
	for _, r := range failed {
		if !seen[r.Kernel] {
			seen[r.Kernel] = true
			fmt.Fprintf(&b, "  dkms-guard rebuild --kernel %s\n", report.Name(r.Kernel))
		}
	}
	fmt.Fprintf(&b, "\nDetails: dkms-guard status, and %s\n", h.Paths.Rel(h.Paths.Notice()))
	return mail.Message{
		From:    from,
		To:      to,
		Subject: fmt.Sprintf("dkms-guard result for %s: FAILURE (DKMS modules did not build)", hostname),
		Body:    b.String(),
	}
}
