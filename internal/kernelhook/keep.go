package kernelhook

import (
	"context"
	"path/filepath"

	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/plan"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Keeper keeps a module's last working build until its replacement is
// installed (keep.Keeper).
type Keeper interface {
	KeepKernel(ctx context.Context, st *state.Store, tree dkms.Tree, kernel string)
	Settle(ctx context.Context, st *state.Store, tree dkms.Tree, opt keep.Options) ([]state.KeptBuild, error)
	DropKernel(ctx context.Context, st *state.Store, kernel string) error
	DropAll(ctx context.Context, st *state.Store) error
}

// settle puts back, under the session's build lock and then the state
// lock, the kept builds whose kernel (one of opt.Kernels; nil: every
// kernel) has no version of their module installed, and drops those no
// longer needed; all are the results just recorded (they name the version
// that failed, and its log). It returns the view, computed again when
// dkms's tree may have changed. No state directory: nothing was ever kept.
func (h *Hooks) settle(ctx context.Context, sess *build.Session, opt keep.Options, all *state.Results, view []results.Kernel) []results.Kernel {
	st := sess.Store()
	if h.Keeper == nil || st == nil {
		return view
	}
	if kept, err := st.LoadKept(); err == nil && len(kept.Builds) == 0 {
		return view
	}
	tree, err := dkms.ReadTree(h.Paths.DKMSTree()) // as the builds left it
	if err != nil {
		h.Report.Warnf("kept builds not looked at: %v", err)
		return view
	}
	if err := st.Locked(ctx, func() error {
		_, err := h.Keeper().Settle(ctx, st, tree, opt)
		return err
	}); err != nil {
		h.Report.Warnf("kept builds: %v", err)
	}
	v, err := h.Results.View(all)
	if err != nil {
		h.Report.Warnf("%v", err)
		return view
	}
	return v
}

// inPlan are the packages run's plan installs, upgrades or configures
// (pending: dpkg may not have configured them yet, and their new version
// has its chance to build first; post-invoke settles their kept builds)
// and those it removes.
func inPlan(run *state.Run) (pending, removed map[string]bool) {
	pending, removed = map[string]bool{}, map[string]bool{}
	if run.Plan == nil {
		return pending, removed
	}
	for _, c := range run.Plan.Changes {
		if c.Kind == plan.Remove {
			removed[c.Package] = true
		} else {
			pending[c.Package] = true
		}
	}
	return pending, removed
}

// noInitramfs tells whether kernel's initramfs is built right after this
// autoinstall, so that putting a kept build back need not update it: the
// kernel image's postinst runs /etc/kernel/postinst.d in order, dkms's
// hook (this autoinstall) before initramfs-tools' (Debian Kernel Handbook,
// section 8; the boot decision makes the same call). header_postinst.d,
// which the headers' postinst runs, has no initramfs hook after dkms's,
// and neither has a person's autoinstall: there the put-back updates the
// initramfs itself where the module was in it or is boot-critical. In a
// reinstall whose headers are configured before the image, that initramfs
// is built twice; one built without the module would be worse.
func (h *Hooks) noInitramfs() bool {
	return h.HookDir == "postinst" && paths.Exists(filepath.Join(h.Paths.KernelHookDir("postinst"), "initramfs-tools"))
}

// Preinst is /etc/kernel/preinst.d/00dkms-guard: before kernel's image is
// unpacked again at the same version (a reinstall, or a new revision of
// the same ABI), where dkms's own preinst.d hook then unbuilds every
// module of that kernel, it keeps their builds (keep.Keeper.KeepKernel)
// for the postinst.d hook to put back if their rebuild fails. A kernel
// with no module installed (a new kernel) costs one read of the tree.
func (h *Hooks) Preinst(ctx context.Context, kernel string) error {
	if h.Keeper == nil {
		return nil
	}
	tree, err := dkms.ReadTree(h.Paths.DKMSTree())
	if err != nil || !installedFor(tree, kernel) {
		return err
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		return err
	}
	defer sess.End()
	st := sess.Store()
	if st == nil {
		h.Report.Warnf("the DKMS modules of %s are not kept: no usable state directory", report.Name(kernel))
		return nil
	}
	return st.Locked(ctx, func() error {
		h.Keeper().KeepKernel(ctx, st, sess.Tree(), kernel)
		return nil
	})
}

// installedFor tells whether any module version is installed for kernel.
func installedFor(tree dkms.Tree, kernel string) bool {
	for _, m := range tree {
		if m.InstalledFor(kernel) {
			return true
		}
	}
	return false
}

// keptFor tells whether kept.json lists a build for kernel ("": for any
// kernel).
func (h *Hooks) keptFor(ctx context.Context, kernel string) (bool, error) {
	var has bool
	err := state.Update(ctx, h.Paths, false, h.Report, func(st *state.Store) error {
		kept, err := st.LoadKept()
		for _, b := range kept.Builds {
			has = has || kernel == "" || b.Kernel == kernel
		}
		return err
	})
	return has, err
}

// settleUnbuilt puts back the kept builds of kernel when autoinstall
// builds nothing for it (no headers, autoinstall disabled): dkms's
// kernel_preinst unbuilt its modules, nothing rebuilds them, and
// initramfs-tools builds the initramfs next. Only when kept.json lists a
// build for kernel does it take the build lock.
func (h *Hooks) settleUnbuilt(ctx context.Context, kernel string) {
	if h.Keeper == nil {
		return
	}
	if has, err := h.keptFor(ctx, kernel); err != nil || !has {
		return
	}
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		h.Report.Warnf("kept builds not looked at: %v", err)
		return
	}
	defer sess.End()
	run, live := h.liveRun(sess.Store())
	opt := keep.Options{Kernels: []string{kernel}, NoInitramfs: h.noInitramfs()}
	if live {
		opt.Pending, opt.Removed = inPlan(run)
	}
	all := h.Results.Load(sess.Store())
	h.settle(ctx, sess, opt, all, nil)
}

// dropKept drops the kept builds of kernel, which is being removed. Only
// when kept.json lists one does it take the build lock.
func (h *Hooks) dropKept(ctx context.Context, kernel string) error {
	if h.Keeper == nil {
		return nil
	}
	if has, err := h.keptFor(ctx, kernel); err != nil || !has {
		return err
	}
	return h.keeping(ctx, func(st *state.Store) error { return h.Keeper().DropKernel(ctx, st, kernel) })
}

// keeping runs fn under the build lock, then the state lock: the
// builders' order, as dkms's tree changes.
func (h *Hooks) keeping(ctx context.Context, fn func(st *state.Store) error) error {
	sess, err := h.Builder.Begin(ctx)
	if err != nil {
		return err
	}
	defer sess.End()
	if st := sess.Store(); st != nil {
		return st.Locked(ctx, func() error { return fn(st) })
	}
	return nil
}

// DropKept drops every kept build: dkms-guard is being removed, and can no
// longer keep or put back anything (the package's prerm).
func (h *Hooks) DropKept(ctx context.Context) error {
	if h.Keeper == nil {
		return nil
	}
	if has, err := h.keptFor(ctx, ""); err != nil || !has {
		return err
	}
	return h.keeping(ctx, func(st *state.Store) error { return h.Keeper().DropAll(ctx, st) })
}
