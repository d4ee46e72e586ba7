// Package boot keeps the machine bootable, and working, when a kernel
// lacks a boot-critical or in-use DKMS module: the default boot entry
// stays on (or moves back to) the newest kernel that has every such
// module, and moves on again once the newer kernel has them. While it is
// pinned, that kernel is kept from apt autoremove (autoremove.go).
//
// NOTE(dkms-guard): with stock dkms, a failed build fails
// /etc/kernel/postinst.d/dkms, run-parts stops before initramfs-tools and
// zz-update-grub, and the old kernel stays the default. dkms-guard lets the
// postinst complete, so it must keep the old kernel the default itself, or
// the next reboot (unattended-upgrades reboots on its own) would end in an
// initramfs shell. dkms-guard must never leave a machine less bootable
// than stock dkms would have.
//
// Policy:
//   - Only modules the next boot needs count (Needs), from two sources:
//     boot-critical ones (package critical, an E: line) and ones in use
//     (package inuse, a W: line); KEEP_KERNEL_FOR chooses which count.
//   - dkms-guard unpin is the administrator's word: boot.json records the
//     kernel taken and what it lacked, and no pin is made for it again
//     until a newer kernel comes or it lacks something else.
//   - The pin is recorded in boot.json; every run re-decides and changes
//     the bootloader only when the decision changed, or when what is on
//     disk (the GRUB snippet) disagrees with the record: the bootloader's
//     files are the truth, boot.json only remembers why.
//   - Deciding runs lsinitramfs, update-initramfs and update-grub: it holds
//     the boot lock, never the state lock, which is taken only to read and
//     to write boot.json.
//   - Before a kernel it pinned away from becomes the default again, its
//     initramfs is rebuilt (stock dkms does not when a module is built
//     after the kernel's postinst), unless initramfs-tools' own hook is
//     about to run for it.
//   - Inside run-parts over /etc/kernel/postinst.d (or prerm.d) the
//     bootloader configuration is left to zz-update-grub, which follows.
//   - An administrator's own GRUB_DEFAULT is respected: only a warning,
//     and a pin made before it is removed. A snippet name linked to
//     /dev/null is never replaced.
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/bootloader"
	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/inuse"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Initramfs rebuilds a kernel's initramfs.
type Initramfs interface {
	Update(ctx context.Context, kernel string, out io.Writer) error
}

// Keeper decides and applies the default boot entry.
type Keeper struct {
	Paths     paths.Paths
	Finder    critical.Finder
	Initramfs Initramfs
	// Detect finds the bootloader; nil result: none dkms-guard can set.
	Detect func(ctx context.Context) bootloader.Loader
	Report *report.Reporter
	// Release is the running kernel.
	Release string
	// HookDir is the kernel hook directory dkms-guard runs from ("postinst",
	// "header_postinst", "prerm", ...; "" outside run-parts), HookKernel the
	// kernel it runs for.
	HookDir, HookKernel string
	// Log receives the output of update-initramfs and update-grub.
	Log io.Writer
	Now func() time.Time
	// Settings are the administrator's, read once per process by the caller.
	Settings func() config.Settings
	// Notes, when set, are more lines for the notice (Secure Boot's).
	Notes func(ctx context.Context, view []results.Kernel) []string
}

// bootLockWait bounds a wait for another dkms-guard's boot decision: it
// may run update-initramfs and update-grub (each bounded to minutes).
const bootLockWait = 10 * time.Minute

// Decide works out the decision without changing anything. exclude is a
// kernel being removed; rec is the last decision (its pin and its
// initramfs listing, which Decide refreshes). Without any kernel lacking a
// module and without a pin in place, it answers at once: no initramfs is
// listed on the apt runs that change nothing.
func (k *Keeper) Decide(ctx context.Context, view []results.Kernel, exclude string, rec *state.Boot) Decision {
	return k.decide(ctx, view, exclude, rec, rec.Pinned != "" || bootloader.GrubPinned(k.Paths))
}

// decide is Decide; look says to find the needed modules even when no
// kernel lacks any (a pin is in place, or status shows them).
func (k *Keeper) decide(ctx context.Context, view []results.Kernel, exclude string, rec *state.Boot, look bool) Decision {
	d := Decision{Settings: k.Settings(), Needs: Needs{}, Lacking: map[string][]state.MV{}, SettingsFile: k.Paths.Rel(k.Paths.Defaults())}
	var bootable []results.Kernel
	missing := false
	for _, v := range view {
		if v.Bootable && v.Kernel != exclude {
			bootable = append(bootable, v)
			d.Order = append(d.Order, v.Kernel)
			missing = missing || len(v.Missing) > 0
		}
	}
	if len(bootable) == 0 {
		return d // a chroot or a container: nothing boots from here
	}
	d.Newest = bootable[0].Kernel
	d.waiverHolds = holds(rec.Waived, bootable[0])
	if !missing && !look {
		d.Keep = d.Newest
		return d
	}
	d.Needs = k.needs(ctx, bootable, d.Settings, rec)
	d.Lacking, d.Keep = choose(bootable, d.Needs)
	d.waive(rec.Waived)
	return d
}

// needs gathers the modules the next boot needs, from every source
// KEEP_KERNEL_FOR lets keep a kernel: none at all for "nothing" (not even
// an initramfs listed).
func (k *Keeper) needs(ctx context.Context, bootable []results.Kernel, s config.Settings, rec *state.Boot) Needs {
	needs := Needs{}
	if !keeps(s.KeepFor, BootCritical) {
		return needs
	}
	tree, err := dkms.ReadTree(k.Paths.DKMSTree())
	if err != nil {
		k.Report.Warnf("boot entry: %v", err)
	}
	finder := k.Finder
	finder.Initramfs = cachedLister{inner: k.Finder.Initramfs, paths: k.Paths, rec: rec}
	reference := k.reference(bootable)
	built := finder.Builds(tree, reference)
	for m, why := range finder.Find(ctx, built, s, reference) {
		needs.Add(m, BootCritical, why...)
	}
	if keeps(s.KeepFor, InUse) {
		// NOT_CRITICAL_MODULES does not apply here: it says the machine
		// boots without a module, not that nobody uses it.
		users := inuse.Finder{Paths: k.Paths, Report: k.Report}
		if k.Release != "" {
			users.Running = func(m string) bool { _, ok := tree.InstalledFor(m, k.Release); return ok }
		}
		for m, why := range users.Find(built) {
			needs.Add(m, InUse, why...)
		}
	}
	return needs
}

// Recorded tells whether a boot decision may stand: boot.json, or
// dkms-guard's GRUB snippet or its protection from apt autoremove without
// it (boot.json lost, moved aside, or from another version). What is on
// disk is the truth: any of them means the next run must decide, even
// when nothing is missing, so that none is left behind. Three stats.
func Recorded(p paths.Paths) bool {
	return paths.Exists(filepath.Join(p.StateDir(), state.BootFile)) || bootloader.GrubPinned(p) ||
		paths.Exists(p.PinnedKernelAptConf())
}

// lacksAny tells whether a bootable kernel (but exclude) lacks a module.
func lacksAny(view []results.Kernel, exclude string) bool {
	for _, v := range view {
		if v.Bootable && v.Kernel != exclude && len(v.Missing) > 0 {
			return true
		}
	}
	return false
}

// reference is the kernel whose initramfs shows what the machine needs to
// boot: the running one, or else the newest bootable one with every module.
func (k *Keeper) reference(bootable []results.Kernel) string {
	if k.Release != "" && paths.Exists(k.Paths.Initrd(k.Release)) {
		return k.Release
	}
	for _, v := range bootable {
		if len(v.Missing) == 0 && paths.Exists(k.Paths.Initrd(v.Kernel)) {
			return v.Kernel
		}
	}
	return ""
}

// Publish settles the boot entry, then tells people (the notice, the
// login, update-notifier, the metrics) with what the next boot will be;
// it returns the lines for the summary. The caller must not hold the
// state lock.
func (k *Keeper) Publish(ctx context.Context, rec *results.Recorder, view []results.Kernel, exclude string) []string {
	lines := k.Settle(ctx, view, exclude)
	rec.Tell(view, lines, exclude, k.notes(ctx, view)...)
	return lines
}

// Settle decides and makes the bootloader follow; it returns the lines the
// notice and the summary show about the next boot. It holds the boot lock
// throughout, so two dkms-guards never decide at once, and the state lock
// only to read boot.json and to write it back: the slow programs run
// without it (and a caller holding it would wait on itself).
func (k *Keeper) Settle(ctx context.Context, view []results.Kernel, exclude string) []string {
	if !lacksAny(view, exclude) && !Recorded(k.Paths) {
		return nil // nothing missing, nothing pinned: the common case costs three stats
	}
	st, unlock, err := k.openLocked(ctx, true)
	if errors.Is(err, state.ErrUnsafe) {
		// Never written through, but no reason to keep the machine less
		// bootable: decide as without a usable state directory.
		k.Report.Warnf("boot entry: %v: deciding without boot.json", err)
		st, unlock, err = nil, func() {}, nil
	}
	if err != nil {
		k.Report.Warnf("boot entry: %v", err)
		return nil
	}
	defer unlock()
	var rec state.Boot
	decided, err := load(ctx, st, &rec)
	if err != nil {
		k.Report.Warnf("boot entry: %v", err)
		return nil
	}
	d := k.Decide(ctx, view, exclude, &rec)
	if decided {
		for kernel, mvs := range k.rebuildInitramfs(ctx, rec.Lacking, d) {
			d.stillLacks(kernel, mvs) // and the next decision tries again
		}
	}
	lines := d.lines(k.apply(ctx, d, &rec, decided))
	k.protect(rec.Pinned)
	if st != nil {
		if err := st.Locked(ctx, func() error { return k.record(st, d, &rec) }); err != nil {
			k.Report.Warnf("boot entry: %v", err)
		}
	}
	k.rebootRequired(lines)
	return lines
}

// openLocked opens the state directory and takes the boot lock. A state
// directory that cannot be written gives a nil store and no error: the
// decision is made all the same, so that a machine with a read-only or
// full /var is kept as bootable as stock dkms keeps it (the bootloader's
// own files say whether a pin is in place).
func (k *Keeper) openLocked(ctx context.Context, create bool) (*state.Store, func(), error) {
	st, err := state.Open(k.Paths, create, k.Report)
	if errors.Is(err, state.ErrUnusable) || errors.Is(err, state.ErrNoState) {
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	unlock, err := st.LockBoot(ctx, bootLockWait)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, func() { unlock(); st.Close() }, nil
}

// load reads boot.json into rec under the state lock (nothing without st).
func load(ctx context.Context, st *state.Store, rec *state.Boot) (bool, error) {
	if st == nil {
		return false, nil
	}
	decided := false
	err := st.Locked(ctx, func() (err error) {
		decided, err = st.Load(state.BootFile, rec)
		return err
	})
	return decided, err
}

// record writes the decision back, or removes boot.json when there is
// nothing to remember.
func (k *Keeper) record(st *state.Store, d Decision, rec *state.Boot) error {
	if !d.waiverHolds {
		rec.Waived = nil // a newer kernel, or its modules arrived: the waiver ends
	}
	if rec.Pinned == "" && rec.Want == "" && len(d.Lacking) == 0 && !d.NeedsPin() && rec.Waived == nil {
		return st.Remove(state.BootFile) // all is well: nothing to remember
	}
	rec.Schema = state.Schema
	rec.Lacking = d.Lacking
	rec.Newest = d.Newest
	rec.Time = k.Now().UTC()
	return st.Save(state.BootFile, rec)
}

// apply makes the bootloader follow d, updates rec and returns the kernel
// the next boot uses ("" for an entry dkms-guard did not choose). A
// decision equal to the recorded one, with the bootloader's files as
// recorded, changes nothing and says nothing: every hook of an apt run
// settles, and the E: line is said once.
func (k *Keeper) apply(ctx context.Context, d Decision, rec *state.Boot, decided bool) string {
	want := ""
	if d.NeedsPin() && d.Settings.ManageBoot {
		want = d.Keep
	}
	if decided && rec.Want == want && sameLacking(rec.Lacking, d.Lacking) && k.asRecorded(rec) {
		if rec.Loader == "GRUB" && rec.Pinned != "" {
			// zz-update-grub may have regenerated grub.cfg since the pin.
			if k.overridden(d, rec, (bootloader.Grub{Paths: k.Paths}).Overridden(rec.Pinned)) {
				rec.Next = ""
			} else {
				rec.Next = rec.Pinned
			}
		}
		return rec.Next
	}
	rec.Next = k.change(ctx, d, rec, want)
	return rec.Next
}

// asRecorded tells whether the bootloader's files agree with rec: the GRUB
// snippet is there exactly when rec says GRUB is pinned, and no
// administrator's GRUB_DEFAULT came after the pin.
func (k *Keeper) asRecorded(rec *state.Boot) bool {
	grub := rec.Pinned != "" && rec.Loader == "GRUB"
	if bootloader.GrubPinned(k.Paths) != grub {
		return false
	}
	return !grub || (bootloader.Grub{Paths: k.Paths}).AdminDefault() == ""
}

// change makes the bootloader follow want ("" for its own default) and
// records in rec what it did; rec.Want changes only when it succeeded, so
// that the next decision tries again.
func (k *Keeper) change(ctx context.Context, d Decision, rec *state.Boot, want string) string {
	pinned := rec.Pinned != "" || bootloader.GrubPinned(k.Paths)
	var loader bootloader.Loader
	if want != "" || pinned {
		loader = k.Detect(ctx)
	}
	if want == "" {
		return k.unpin(ctx, d, rec, loader, pinned)
	}
	if loader == nil {
		d.sayf(k.Report)("%s; no GRUB or systemd-boot was found, so the boot entry was not changed: make sure %s is booted", d.why(), report.Name(want))
		rec.Want = want // nothing to try again: said once
		return d.Newest
	}
	if admin := loader.AdminDefault(); admin != "" {
		if pinned && k.removePin(ctx, rec, loader) != nil {
			return rec.Next
		}
		k.Report.Warnf("%s; the default boot entry is the administrator's (%s), so dkms-guard left it alone: boot %s until the modules build",
			d.why(), admin, report.Name(want))
		rec.Want = want
		return ""
	}
	return k.pin(ctx, d, rec, loader, want)
}

// pin makes want the default entry with loader.
func (k *Keeper) pin(ctx context.Context, d Decision, rec *state.Boot, loader bootloader.Loader, want string) string {
	deferred := k.deferGrub()
	regenerate := !deferred && !(rec.Pinned == want && rec.Loader == loader.Name() && loader.Pinned())
	where, err := loader.Pin(ctx, want, d.why()+",", regenerate)
	if errors.Is(err, bootloader.ErrMasked) {
		d.sayf(k.Report)("%s; %v, so the boot entry was not changed: the next boot uses %s %s", d.why(), err, report.Name(d.Newest), d.fate())
		rec.Want, rec.Pinned, rec.Loader, rec.Where = want, "", "", ""
		return d.Newest
	}
	if err != nil {
		d.sayf(k.Report)("%s; could not keep %s the default boot entry: %v", d.why(), report.Name(want), err)
		return d.Newest
	}
	rec.Want, rec.Pinned, rec.Loader, rec.Where, rec.Overridden = want, want, loader.Name(), where, ""
	// grub.cfg is checked unless zz-update-grub is about to regenerate it:
	// one left as it was (the same entry pinned again) may still be
	// overridden.
	if !deferred && k.overridden(d, rec, loader.Overridden(want)) {
		return ""
	}
	d.sayf(k.Report)("%s: the machine will keep booting %s (%s: %s)%s", d.why(), report.Name(want), loader.Name(), bootloader.Describe(loader.Name(), where), d.anyway())
	return want
}

// overridden records other, the default entry the generated
// configuration holds instead of the pin ("" when it holds the pin), and
// says so once per change: a later grub.d snippet or a hook of the
// administrator's wins over dkms-guard's GRUB_DEFAULT, and the E: line
// must not claim a pin that grub.cfg does not hold.
func (k *Keeper) overridden(d Decision, rec *state.Boot, other string) bool {
	if other != "" && other != rec.Overridden {
		d.sayf(k.Report)("%s; dkms-guard set %s (%s: %s), but %s sets default=%s: a later GRUB_DEFAULT in %s or %s wins, and the next boot may not use %s",
			d.why(), report.Name(rec.Pinned), rec.Loader, bootloader.Describe(rec.Loader, rec.Where), k.Paths.Rel(k.Paths.GrubConfig()),
			report.Name(other), k.Paths.Rel(k.Paths.GrubDefaults()), k.Paths.Rel(k.Paths.GrubDefaultsDir()), report.Name(rec.Pinned))
	}
	rec.Overridden = other
	return other != ""
}

// unpin gives the bootloader its own default back, and says why the
// next boot may still fail. It returns the kernel the next boot uses.
func (k *Keeper) unpin(ctx context.Context, d Decision, rec *state.Boot, loader bootloader.Loader, pinned bool) string {
	entry := "the boot entry was not changed"
	if pinned && loader != nil {
		name := k.pinName(rec)
		if k.removePin(ctx, rec, loader) != nil {
			return rec.Next
		}
		// While the newest kernel still lacks a module, the E: line below
		// says the pin went; "has all its modules" would be false.
		entry = "the boot pin " + name + " was removed"
		switch {
		case d.Waived:
			k.Report.Notef("the boot entry is no longer pinned %s: the next boot uses %s, which the administrator took without %s (dkms-guard unpin)",
				name, report.Name(d.Newest), d.lackingMVs())
		case d.kept() == "":
			k.Report.Notef("the boot entry is no longer pinned %s: KEEP_KERNEL_FOR=nothing in %s; the next boot uses %s",
				name, d.SettingsFile, report.Name(d.Newest))
		case !d.NeedsPin():
			k.Report.Notef("the boot entry is no longer pinned %s: the next boot uses %s, which has all its %s DKMS modules",
				name, report.Name(d.Newest), d.kept())
		}
	}
	rec.Want, rec.Pinned, rec.Loader, rec.Where, rec.Overridden = "", "", "", "", ""
	switch {
	case !d.NeedsPin():
	case !d.Settings.ManageBoot:
		d.sayf(k.Report)("%s; MANAGE_BOOT_ENTRY=no in %s: %s, the next boot uses %s %s",
			d.why(), d.SettingsFile, entry, report.Name(d.Newest), d.fate())
	default:
		d.sayf(k.Report)("%s, and no other kernel has all its %s DKMS modules: %s", d.why(), d.kept(), entry)
	}
	return d.Newest
}

// removePin removes dkms-guard's pin, saying so when it cannot.
func (k *Keeper) removePin(ctx context.Context, rec *state.Boot, loader bootloader.Loader) error {
	if err := loader.Unpin(ctx, !k.deferGrub()); err != nil {
		k.Report.Errorf("could not remove the boot pin %s: %v; run dkms-guard unpin", k.pinName(rec), err)
		return err
	}
	rec.Pinned, rec.Loader, rec.Where, rec.Overridden = "", "", "", ""
	return nil
}

// pinName names the pin being removed, to follow "pinned" or "the boot
// pin": "to KERNEL", or, when boot.json did not record it, the GRUB
// snippet it was found in (the only unrecorded pin a decision looks for).
func (k *Keeper) pinName(rec *state.Boot) string {
	if rec.Pinned != "" {
		return "to " + report.Name(rec.Pinned)
	}
	return "in " + report.Name(k.Paths.Rel(k.Paths.GrubPin())) + " (not recorded in boot.json)"
}

// Unpin removes dkms-guard's pin whatever the decision (dkms-guard unpin,
// and the package's removal), recorded or only on disk. The next settle
// pins again if needed.
func (k *Keeper) Unpin(ctx context.Context, recordedOnly bool) error {
	st, unlock, err := k.openLocked(ctx, false)
	if err != nil {
		return err
	}
	defer unlock()
	var rec state.Boot
	if _, err := load(ctx, st, &rec); err != nil {
		return err
	}
	loader := k.Detect(ctx)
	if _, grub := loader.(bootloader.Grub); loader != nil && rec.Pinned == "" && loader.Pinned() && recordedOnly && !grub {
		// zz-dkms-guard.cfg is dkms-guard's by its name; an EFI default
		// entry that boot.json does not record may be the administrator's.
		k.Report.Notef("left %s's default entry alone: boot.json does not record it as dkms-guard's (dkms-guard unpin removes it)", loader.Name())
		loader = nil
	}
	if loader == nil && rec.Pinned != "" {
		// Keep the record: the next decision, or unpin once the
		// bootloader's tools are back, removes the pin.
		return fmt.Errorf("boot.json records a pin to %s by %s, but no GRUB or systemd-boot tools were found: nothing was removed",
			report.Name(rec.Pinned), rec.Loader)
	}
	if loader != nil && (rec.Pinned != "" || loader.Pinned()) {
		if err := loader.Unpin(ctx, true); err != nil {
			return err
		}
		where := loader.Name()
		if rec.Where != "" && rec.Loader == loader.Name() {
			where += " " + bootloader.Describe(rec.Loader, rec.Where)
		}
		k.Report.Notef("removed dkms-guard's boot pin (%s)", where)
	}
	k.protect("")
	w := waiverOf(rec)
	if w != nil && !recordedOnly {
		var mvs []string
		for _, mv := range w.Lacking {
			mvs = append(mvs, report.MV(mv.Module, mv.Version))
		}
		k.Report.Notef("the next boot uses %s without %s: dkms-guard keeps no older kernel the default for them until a newer kernel is installed or they build",
			report.Name(w.Kernel), strings.Join(mvs, ", "))
	}
	if st == nil {
		return nil
	}
	if w == nil || recordedOnly {
		return st.Locked(ctx, func() error { return st.Remove(state.BootFile) })
	}
	// The pin is gone; what stays is the administrator's choice, which
	// the next decisions honour (unpin used to be undone by the next apt
	// run).
	rec = state.Boot{Schema: state.Schema, Lacking: rec.Lacking, Newest: w.Kernel, Next: w.Kernel, Waived: w, Initrd: rec.Initrd, Time: k.Now().UTC()}
	return st.Locked(ctx, func() error { return st.Save(state.BootFile, &rec) })
}

// waiverOf is what dkms-guard unpin waives: the newest kernel at the last
// decision, with what it lacked and what a waiver still holding for it
// already waived (unpin again must not end it); nil when there is
// nothing. A boot.json written before it recorded the newest kernel names
// it only when a single kernel lacked modules (a pin is made only for the
// newest).
func waiverOf(rec state.Boot) *state.Waiver {
	newest := rec.Newest
	if newest == "" && len(rec.Lacking) == 1 {
		for kernel := range rec.Lacking {
			newest = kernel
		}
	}
	var lacking []state.MV
	if w := rec.Waived; w != nil && w.Kernel == newest {
		lacking = slices.Clone(w.Lacking)
	}
	for _, mv := range rec.Lacking[newest] {
		if !slices.Contains(lacking, mv) {
			lacking = append(lacking, mv)
		}
	}
	if len(lacking) == 0 {
		return nil
	}
	return &state.Waiver{Kernel: newest, Lacking: lacking}
}

// deferGrub tells whether zz-update-grub runs after dkms-guard in this
// run-parts (the kernel's postinst.d, or postrm.d after prerm.d).
func (k *Keeper) deferGrub() bool {
	switch k.HookDir {
	case "postinst":
		return paths.Exists(filepath.Join(k.Paths.KernelHookDir("postinst"), "zz-update-grub"))
	case "prerm":
		return paths.Exists(filepath.Join(k.Paths.KernelHookDir("postrm"), "zz-update-grub"))
	}
	return false
}

// rebuildInitramfs rebuilds the initramfs of every bootable kernel (not
// one being removed) that lacked a boot-critical module at the last
// decision and has them all in d (a module only in use is not in the
// initramfs: no rebuild for it), except the one whose postinst.d is
// running: initramfs-tools' hook follows
// dkms-guard's there. It returns the kernels whose initramfs could not be
// rebuilt, with what they lacked: their initramfs still lacks it.
func (k *Keeper) rebuildInitramfs(ctx context.Context, before map[string][]state.MV, d Decision) map[string][]state.MV {
	failed := map[string][]state.MV{}
	var kernels []string
	for kernel := range before {
		lackedCritical := slices.ContainsFunc(before[kernel], func(mv state.MV) bool { return d.Needs[mv.Module].Class == BootCritical })
		if lackedCritical && len(d.Lacking[kernel]) == 0 && slices.Contains(d.Order, kernel) && paths.Exists(k.Paths.Initrd(kernel)) {
			kernels = append(kernels, kernel)
		}
	}
	sort.Strings(kernels)
	for _, kernel := range kernels {
		if kernel == k.HookKernel && k.HookDir == "postinst" && paths.Exists(filepath.Join(k.Paths.KernelHookDir("postinst"), "initramfs-tools")) {
			continue
		}
		k.Report.Notef("rebuilding the initramfs of %s, which now has its boot-critical DKMS modules", report.Name(kernel))
		if err := k.Initramfs.Update(ctx, kernel, k.Log); err != nil {
			k.Report.Errorf("%v: the initramfs of %s may still lack its boot-critical modules", err, report.Name(kernel))
			failed[kernel] = before[kernel]
		}
	}
	return failed
}

// rebootRequired keeps one dkms-guard line in /run/reboot-required while
// it exists (update-notifier and unattended-upgrades show it), saying
// which kernel the next boot will use. It never creates the file: a pin
// does not make a reboot necessary.
func (k *Keeper) rebootRequired(lines []string) {
	name := k.Paths.RebootRequired()
	data, err := file.ReadRegular(name, 1<<20)
	if err != nil {
		return
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.HasPrefix(l, "*** dkms-guard: ") {
			keep = append(keep, l)
		}
	}
	for _, l := range lines {
		keep = append(keep, "*** dkms-guard: "+strings.TrimSuffix(l, ".")+" ***")
	}
	out := strings.Join(keep, "\n") + "\n"
	if out == string(data) {
		return
	}
	root, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return
	}
	defer root.Close()
	if err := file.WriteAtomic(root, filepath.Base(name), []byte(out), 0o644); err != nil {
		k.Report.Warnf("updating %s: %v", k.Paths.Rel(name), err)
	}
}

// cachedLister lists an initramfs through the record's cache: the listing
// is reused while the image keeps its size and mtime.
type cachedLister struct {
	inner critical.Lister
	paths paths.Paths
	rec   *state.Boot
}

func (c cachedLister) List(ctx context.Context, image string) ([]string, error) {
	fi, err := os.Stat(filepath.Join(c.paths.Root, image))
	if err != nil {
		return c.inner.List(ctx, image)
	}
	if in := c.rec.Initrd; in != nil && in.Image == image && in.Size == fi.Size() && in.MTime.Equal(fi.ModTime()) {
		return in.Modules, nil
	}
	files, err := c.inner.List(ctx, image)
	if err != nil {
		return nil, err
	}
	var mods []string
	for _, f := range files {
		if strings.Contains(filepath.Base(f), ".ko") {
			mods = append(mods, f)
		}
	}
	c.rec.Initrd = &state.Initrd{Image: image, Size: fi.Size(), MTime: fi.ModTime(), Modules: mods}
	return mods, nil
}
