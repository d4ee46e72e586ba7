// Package keep holds a DKMS module's last working build until its
// replacement is installed.
//
// Two upgrades remove a working module before anyone knows whether its
// replacement builds: a module package's upgrade (dh_dkms's prerm runs
// `dkms remove --all` before the new version is built) and a kernel image
// reinstalled at the same version (dkms 3.1.6+'s /etc/kernel/preinst.d/dkms
// runs `dkms kernel_preinst`, which unbuilds every module of that kernel).
// Before either, Keep archives each installed build with dkms's own
// `dkms mktarball`; after it, Settle puts back with `dkms ldtarball` and
// `dkms install --force` every build whose kernel was left without any
// version of the module, and drops the archives whose replacement is
// installed. Only dkms's own commands touch dkms's tree and /lib/modules.
//
// kept.json (state.KeptFile) lists the archives, which live in
// paths.KeptDir. Callers hold the state lock and the build lock.
package keep

import (
	"context"
	"io"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// DKMS is what keeping needs of dkms (dkms.Runner).
type DKMS interface {
	// MkTarball runs `dkms mktarball -m M -v V -k K --archive=ARCHIVE`,
	// with --binaries-only when binariesOnly.
	MkTarball(ctx context.Context, module, version, kernel string, binariesOnly bool, archive string, out io.Writer) error
	// LdTarball runs `dkms ldtarball --archive=ARCHIVE`, with --force when force.
	LdTarball(ctx context.Context, archive string, force bool, out io.Writer) error
	// InstallKept runs `dkms install --force --no-depmod -m M -v V -k K`.
	InstallKept(ctx context.Context, module, version, kernel string, out io.Writer) error
	// Remove runs `dkms remove -m M -v V -k K`, or `--all` when kernel is "".
	Remove(ctx context.Context, module, version, kernel string, out io.Writer) error
	// Depmod runs depmod for kernel as dkms does.
	Depmod(ctx context.Context, kernel string, out io.Writer) error
}

// Initramfs lists and updates initramfs images (initramfs.Tool).
type Initramfs interface {
	List(ctx context.Context, image string) ([]string, error)
	Update(ctx context.Context, kernel string, out io.Writer) error
}

// Checker tells whether built kernel modules (files, .ko or compressed)
// load into kernel: same vermagic, same symbol versions (kmod.Checker).
// The error says what differs.
type Checker interface {
	Fits(ctx context.Context, files []string, kernel string) error
}

// Want is one module version whose installed builds are to be kept.
type Want struct {
	Module  string
	Version string
	Package string   // its package, "" if none
	Kernels []string // the kernels it is installed for
	Why     state.KeepWhy
}

// Keeper keeps and puts back builds.
type Keeper struct {
	Paths     paths.Paths
	DKMS      DKMS
	Initramfs Initramfs
	Checker   Checker
	Report    *report.Reporter
	Now       func() time.Time
	Settings  config.Settings
	// Critical, when set, tells whether module is boot-critical for
	// kernel: putting it back then updates that kernel's initramfs even
	// if it did not hold the module before.
	Critical func(ctx context.Context, kernel, module string) bool
	// Log receives dkms's output (a file under paths.LogDir).
	Log io.Writer
}

// Keep archives the installed build of every want for each of its
// kernels, before dpkg runs (run: the apt run's id, "" outside apt). A
// build that cannot be kept is one W: line; keeping never stops dpkg.
// It does nothing when KEEP_WORKING_BUILDS=no.
func (k *Keeper) Keep(ctx context.Context, st *state.Store, wants []Want, run string) {}

// KeepKernel keeps every module build installed for kernel (its image
// package is about to be reinstalled or upgraded at the same version),
// binaries only, and only where dkms's own preinst.d hook exists (dkms
// 3.1.6+: older dkms leaves the builds alone).
func (k *Keeper) KeepKernel(ctx context.Context, st *state.Store, tree dkms.Tree, kernel string) {}

// Options say what one Settle may do.
type Options struct {
	// Kernels limits it to these kernels (nil: every kernel).
	Kernels []string
	// Removed are the packages removed in this run: their modules' kept
	// builds are dropped, never put back.
	Removed map[string]bool
	// NoInitramfs: the caller's kernel hook runs before initramfs-tools'
	// (postinst.d), which builds the initramfs next.
	NoInitramfs bool
}

// Settle puts back every kept build whose kernel has no version of the
// module installed, and drops those whose replacement is installed, whose
// kernel is gone, or whose package was removed. It returns the builds put
// back this time. Dropping the last kept build of a version that was put
// back from an archive with its source removes that version from dkms's
// tree (dkms remove --all) and its /usr/src directory.
func (k *Keeper) Settle(ctx context.Context, st *state.Store, tree dkms.Tree, opt Options) ([]state.KeptBuild, error) {
	return nil, nil
}

// DropKernel drops every kept build for kernel (it is being removed).
func (k *Keeper) DropKernel(ctx context.Context, st *state.Store, kernel string) error { return nil }

// DropAll drops every kept build (dkms-guard is purged).
func (k *Keeper) DropAll(ctx context.Context, st *state.Store) error { return nil }

// Load reads kept.json; a missing file is no kept builds.
func Load(st *state.Store) (state.Kept, error) {
	kept := state.Kept{Schema: state.Schema}
	_, err := st.Load(state.KeptFile, &kept)
	kept.Schema = state.Schema
	return kept, err
}
