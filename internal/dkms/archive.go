package dkms

// Keeping a build (package keep) goes through dkms's own archive commands,
// so that only dkms writes dkms's tree and /lib/modules. What they do, read
// in dkms.in (make_tarball, load_tarball, add_source_tree, add_module; the
// same in 3.0.10, 3.2.2 and 3.4.3) and tried on Debian 12's 3.0.10 and
// Debian 13's 3.2.2 (/work/keep-findings.md):
//
//   - mktarball copies $dkms_tree/M/V/K/ARCH (module/*.ko as built, and
//     log/) to dkms_main_tree/K/ARCH, and either the source
//     (dkms_source_tree/) or, with --binaries-only, only dkms.conf
//     (dkms_binaries_only/); `tar -caf` compresses by the name's suffix
//     (.tar.gz: gzip). The build must exist (exit 6 otherwise).
//   - ldtarball of an archive with the source copies it to /usr/src/M-V
//     (with --force it first deletes what is there), loads the binaries into
//     $dkms_tree/M/V/K/ARCH (an existing directory is skipped unless
//     --force, which replaces it) and adds M/V (the source link). A version
//     still added is refused (exit 8) unless --force; with --force the
//     binaries are loaded and add_module then exits 3 ("DKMS tree already
//     contains"): for an archive made by mktarball that exit is the only
//     3 there is, and the load succeeded.
//   - A binaries-only archive loads without the source only as a stub that
//     dkms 3.2 does not count as added (its source is not a symlink): keep
//     uses those only while the source stays (a kernel reinstalled).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/file"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// alreadyAdded is dkms's exit status when add_module finds the version
// already added (die 3), which ends every `ldtarball --force` of a
// version that is still added, after its binaries were loaded.
const alreadyAdded = 3

// MkTarball runs `dkms mktarball -m M -v V -k K --archive=ARCHIVE`, with
// --binaries-only when binariesOnly: the build of M/V for K (built or
// installed), with its source unless binariesOnly, into archive (made
// gzip-compressed when its name ends in .tar.gz; its directory is made
// when missing).
func (r Runner) MkTarball(ctx context.Context, module, version, kernel string, binariesOnly bool, archive string, out io.Writer) error {
	args := []string{"mktarball", "-m", module, "-v", version, "-k", kernel, "--archive=" + archive}
	if binariesOnly {
		args = append(args, "--binaries-only")
	}
	return r.dkms(ctx, args, 0, out, nil)
}

// LdTarball runs `dkms ldtarball --archive=ARCHIVE`, with --force when
// force. force is needed whenever M/V is still added or its build
// directory for K still exists (a failed build leaves one): it replaces
// both /usr/src/M-V (from an archive with the source) and the build.
// dkms's exit 3 under force, "already added", is success: the binaries
// were loaded and the version was added before.
func (r Runner) LdTarball(ctx context.Context, archive string, force bool, out io.Writer) error {
	args := []string{"ldtarball", "--archive=" + archive}
	if force {
		args = append(args, "--force")
	}
	err := r.dkms(ctx, args, 0, out, nil)
	var xe *program.ExitError
	if force && errors.As(err, &xe) && xe.Code == alreadyAdded {
		return nil
	}
	return err
}

// InstallKept runs `dkms install --force --no-depmod -m M -v V -k K`: the
// build ldtarball loaded, installed again. --force skips dkms's version
// check against the module already in /lib/modules/K (check_version_sanity)
// and its pre_install script's veto, as putting an older version back must;
// depmod is the caller's (Depmod), once per kernel.
func (r Runner) InstallKept(ctx context.Context, module, version, kernel string, out io.Writer) error {
	return r.dkms(ctx, []string{"install", "--force", "--no-depmod", "-m", module, "-v", version, "-k", kernel}, 0, out, nil)
}

// Remove runs `dkms remove -m M -v V -k K`, or `--all` when kernel is "":
// uninstalled and unbuilt, and gone from dkms's tree once no kernel has a
// build (dkms leaves /usr/src/M-V to its package).
func (r Runner) Remove(ctx context.Context, module, version, kernel string, out io.Writer) error {
	args := []string{"remove", "-m", module, "-v", version}
	if kernel == "" {
		args = append(args, "--all")
	} else {
		args = append(args, "-k", kernel)
	}
	return r.dkms(ctx, args, 0, out, nil)
}

// maxArchiveModule bounds one module file read out of an archive (a zfs.ko
// with its debug information is some tens of MB).
const maxArchiveModule = 1 << 30

// ArchiveModules copies out of archive (made by `dkms mktarball`, gzip or
// not) the module files built for kernel,
// dkms_main_tree/K/ARCH/module/NAME, into dir as dir/NAME, and returns
// their names: what a check of a kept build (kmod.Checker) reads before
// dkms loads it. It reads the archive only; nothing of dkms's is touched.
func ArchiveModules(archive, kernel, dir string) ([]string, error) {
	f, _, err := file.OpenRegular(archive)
	if err != nil {
		return nil, fmt.Errorf("reading kept archive: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading kept archive %s: %w", archive, err)
		}
		defer zr.Close()
		r = zr
	}
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading kept archive %s: %w", archive, err)
		}
		parts := strings.Split(strings.TrimPrefix(path.Clean(h.Name), "./"), "/")
		if h.Typeflag != tar.TypeReg || len(parts) != 5 || parts[0] != "dkms_main_tree" || parts[1] != kernel || parts[3] != "module" || !isModuleFile(parts[4]) {
			continue
		}
		if h.Size > maxArchiveModule {
			return nil, fmt.Errorf("reading kept archive %s: %s is larger than %d bytes", archive, h.Name, maxArchiveModule)
		}
		name := filepath.Join(dir, parts[4])
		if err := writeFrom(name, tr, h.Size); err != nil {
			return nil, fmt.Errorf("reading kept archive %s: %w", archive, err)
		}
		names = append(names, name)
	}
	return names, nil
}

// isModuleFile tells whether name is a kernel module, compressed or not.
func isModuleFile(name string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// writeFrom writes size bytes of r to a new file name.
func writeFrom(name string, r io.Reader, size int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
