package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/report"
)

// NOTE(dkms-guard): apt's kernel autoremoval keeps only the running kernel
// and the newest ones (apt 2.x computes this itself; before, apt's
// /etc/kernel/postinst.d/apt-auto-removal wrote it to
// /etc/apt/apt.conf.d/01autoremove-kernels), so `apt autoremove` could
// delete the very kernel a pin boots. While a pin stands its kernel is
// protected the same way, with APT::NeverAutoRemove patterns in a file of
// dkms-guard's own, removed with the pin.

// versionedPackages are the name patterns of Debian's
// APT::VersionedKernelPackages (apt's /etc/apt/apt.conf.d/01autoremove)
// that a Linux kernel's packages match: image, headers, -unsigned, and
// out-of-tree module packages built for it.
var versionedPackages = []string{"linux-.*", ".*-modules", ".*-kernel"}

// kernelName is what a kernel release may hold to be written into apt's
// configuration: nothing that could end a quoted string or a line.
var kernelName = regexp.MustCompile(`^[A-Za-z0-9.+~_-]+$`)

// neverAutoRemove is the apt configuration that protects kernel's packages.
func neverAutoRemove(kernel string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Written by dkms-guard while it keeps %s the default boot entry, so that\n", kernel)
	b.WriteString("// apt autoremove does not remove the kernel the next boot uses. dkms-guard\n")
	b.WriteString("// removes this file with the pin (dkms-guard unpin, or the kernel's modules\n")
	b.WriteString("// building). Do not edit it.\n")
	b.WriteString("APT::NeverAutoRemove\n{\n")
	for _, p := range versionedPackages {
		fmt.Fprintf(&b, "   \"^%s-%s$\";\n", p, regexp.QuoteMeta(kernel))
	}
	b.WriteString("};\n")
	return b.Bytes()
}

// protect keeps pinned's packages from apt's autoremoval, or, with pinned
// "", removes that protection. Without an apt configuration directory
// (no apt here) there is nothing to protect from.
func (k *Keeper) protect(pinned string) {
	name := k.Paths.PinnedKernelAptConf()
	if pinned == "" {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.Report.Warnf("removing %s: %v", k.Paths.Rel(name), err)
		}
		return
	}
	if !kernelName.MatchString(pinned) {
		k.Report.Warnf("cannot keep %s from apt autoremove: an odd kernel name", report.Name(pinned))
		return
	}
	data := neverAutoRemove(pinned)
	if old, err := file.ReadRegular(name, 1<<16); err == nil && bytes.Equal(old, data) {
		return
	}
	root, err := os.OpenRoot(filepath.Dir(name))
	if err != nil {
		return
	}
	defer root.Close()
	if err := file.WriteAtomic(root, filepath.Base(name), data, 0o644); err != nil {
		k.Report.Warnf("keeping %s from apt autoremove: %v", report.Name(pinned), err)
	}
}
