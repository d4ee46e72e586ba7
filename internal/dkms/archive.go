package dkms

// Keeping a build (package keep) goes through dkms's own archive commands,
// so that only dkms writes dkms's tree and /lib/modules. What they do (dkms.in's
// make_tarball, load_tarball, add_source_tree, add_module: the same in 3.0.10,
// 3.2.2 and 3.4.3; tried on Debian 12's 3.0.10 and Debian 13's 3.2.2):
//
//   - mktarball copies $dkms_tree/M/V/K/ARCH (module/ with the .ko as built,
//     .ko.xz on Debian 13, and log/) to dkms_main_tree/K/ARCH in the archive,
//     with the source (dkms_source_tree/) or, with --binaries-only, only
//     dkms.conf (dkms_binaries_only/). `tar -caf` compresses by the name's
//     suffix (.tar.gz: gzip). Exit 3: M/V not added; 6: not built for K.
//   - ldtarball of a version not added: copies the source to /usr/src/M-V,
//     loads the binaries into $dkms_tree/M/V/K/ARCH and adds M/V (exit 0).
//     Of a version still added: exit 8, nothing done, unless --force; with
//     --force it deletes and copies /usr/src/M-V again (source archives),
//     replaces the binaries, and add_module then exits 3 ("DKMS tree already
//     contains"). For an archive made by mktarball that is the only exit 3
//     there is, after a successful load.
//   - A binaries-only archive whose source is gone loads as a stub (exit 1)
//     that dkms 3.2 neither lists nor removes: such archives are for a
//     kernel reinstalled, whose modules keep their source.

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
// installed), with its source unless binariesOnly, into archive (gzip when
// its name ends in .tar.gz; dkms makes its directory when missing).
func (r Runner) MkTarball(ctx context.Context, module, version, kernel string, binariesOnly bool, archive string, out io.Writer) error {
	args := []string{"mktarball", "-m", module, "-v", version, "-k", kernel, "--archive=" + archive}
	if binariesOnly {
		args = append(args, "--binaries-only")
	}
	return r.dkms(ctx, args, 0, out, nil)
}

// LdTarball runs `dkms ldtarball --archive=ARCHIVE`, with --force when
// force: needed when M/V is still added (a second kernel's archive of a
// version put back; a kernel reinstalled), refused otherwise (exit 8).
// Under force dkms's exit 3, "already added", is success: the binaries
// were loaded into the version that was added before.
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
// uninstalled and unbuilt (exit 0 also where M/V is only built, as after
// another version replaced it), and gone from dkms's tree once no kernel
// has a build; dkms never deletes /usr/src/M-V.
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
