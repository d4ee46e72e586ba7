package host

import (
	"bytes"
	"slices"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/bootloader"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// GrubOrder is how a GRUB release's /etc/grub.d/10_linux orders the
// kernels of its menu. The first is the default entry (GRUB_DEFAULT=0),
// the one the machine boots: dkms-guard must agree on it, and dkms's own
// VER() order does not (5.15.0-1085-azure is newer than 5.15.0-151-generic
// for GRUB, older for VER, which pads numbers to only three digits).
type GrubOrder int

const (
	// VersionSort is GRUB 2.12 on (Debian 13): LC_ALL=C sort -V -r over
	// the image paths, each ".old" image right after its namesake, then
	// GRUB_TOP_LEVEL's image moved to the front.
	VersionSort GrubOrder = iota
	// FindLatest is GRUB 2.06 and before (Debian 12): version_find_latest
	// picks the newest remaining image, again and again, comparing with
	// dpkg --compare-versions after turning -rc, -pre, -git, -test,
	// -trunk and .old into ~rc ... so that they sort before the release.
	FindLatest
)

// String names the order for messages and tests.
func (o GrubOrder) String() string {
	if o == FindLatest {
		return "version_find_latest (GRUB 2.06)"
	}
	return "version_sort -r (GRUB 2.12)"
}

// image is the file 10_linux finds for a kernel: /boot/vmlinuz-KERNEL.
// GRUB compares these paths, prefix included, and GRUB_TOP_LEVEL names one.
func image(kernel string) string { return "/boot/vmlinuz-" + kernel }

// SortGrub orders kernels newest first as GRUB's 10_linux lists them:
// kernels[0] is the default entry. topLevel is GRUB_TOP_LEVEL, an image
// path; only VersionSort reads it, as only GRUB 2.12 does.
func SortGrub(order GrubOrder, kernels []string, topLevel string) []string {
	// 10_linux globs /boot/vmlinuz-*: the shell sorts the names bytewise
	// (dash, C collation), which decides ties in version_find_latest.
	out := slices.Compact(slices.Sorted(slices.Values(kernels)))
	if order == FindLatest {
		return findLatestOrder(out)
	}
	slices.SortStableFunc(out, func(a, b string) int { return -sortVLine(versionSortLine(a), versionSortLine(b)) })
	if i := slices.IndexFunc(out, func(k string) bool { return image(k) == topLevel }); i > 0 {
		top := out[i]
		out = slices.Insert(slices.Delete(out, i, i+1), 0, top)
	}
	return out
}

// versionSortLine is the line 10_linux hands to version_sort: the image
// path with ".old" replaced by " 1" and " 2" appended to the others, so
// that an old image comes after its namesake in the reversed order.
func versionSortLine(kernel string) string {
	if k, ok := strings.CutSuffix(image(kernel), ".old"); ok {
		return k + " 1"
	}
	return image(kernel) + " 2"
}

// sortVLine is LC_ALL=C sort -V's comparison of two whole lines:
// filevercmp, then the bytes as the last resort. sort -r reverses both.
func sortVLine(a, b string) int {
	if c := filevercmp(a, b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// findLatestOrder is 10_linux's loop over version_find_latest on GRUB
// 2.06: take the newest of what is left, in glob order, keeping the first
// of equals. A comparison dpkg refuses (a bad version on either side,
// dpkg exits 2) is not "newer".
func findLatestOrder(left []string) []string {
	var out []string
	for len(left) > 0 {
		latest := -1
		for i, k := range left {
			if latest < 0 || versionTestGt(image(k), image(left[latest])) {
				latest = i
			}
		}
		out = append(out, left[latest])
		left = slices.Delete(left, latest, latest+1)
	}
	return out
}

// versionTestGt is grub-mkconfig_lib's version_test_gt on GRUB 2.06:
// drop everything up to the first "-" ("/boot/vmlinuz-"), turn
// [._-](pre|rc|test|git|old|trunk) into ~\1, and ask dpkg whether a > b.
// Its .old cases never match: the rewrite has already turned ".old" into
// "~old".
func versionTestGt(a, b string) bool {
	a, b = grubTildeRewrite(a), grubTildeRewrite(b)
	if b == "" {
		return true
	}
	return dpkgGt(a, b)
}

var tildeWords = []string{"pre", "rc", "test", "git", "old", "trunk"}

// grubTildeRewrite is sed -e 's/[^-]*-//;s/[._-]\(pre\|rc\|test\|git\|old\|trunk\)/~\1/g'.
func grubTildeRewrite(s string) string {
	if _, after, ok := strings.Cut(s, "-"); ok {
		s = after
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == '_' || c == '-' {
			if w := tildeWordAt(s[i+1:]); w != "" {
				b.WriteByte('~')
				b.WriteString(w)
				i += len(w)
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tildeWordAt is the alternative sed matches at the start of s: the
// first that matches, as GNU sed's leftmost-longest choice among these
// words (none is a prefix of another) gives.
func tildeWordAt(s string) string {
	for _, w := range tildeWords {
		if strings.HasPrefix(s, w) {
			return w
		}
	}
	return ""
}

// Grub tells how this machine's GRUB orders its menu, and GRUB_TOP_LEVEL
// when it is set to a plain value. The order is read from
// /etc/grub.d/10_linux, the script that makes the Linux entries, since
// that (not the package version) is what runs: one that calls
// version_find_latest is GRUB 2.06's; any other, or none (no GRUB, an
// unreadable script), is taken as version_sort -r, the order of GRUB 2.12
// and later and the nearest to systemd-boot's, which also sorts by version.
func (h Host) Grub() (order GrubOrder, topLevel string) {
	script, err := file.ReadRegular(h.Paths.GrubLinuxScript(), 1<<20)
	if err == nil && bytes.Contains(script, []byte("version_find_latest")) {
		return FindLatest, "" // GRUB 2.06 has no GRUB_TOP_LEVEL
	}
	return VersionSort, h.grubTopLevel()
}

// grubTopLevel is GRUB_TOP_LEVEL as grub-mkconfig sources it
// (bootloader.SourceGrubDefaults). A value set in a way that cannot be
// read without running the shell is left out (""): then the menu is taken
// as sorted, its likeliest order.
func (h Host) grubTopLevel() string {
	vars := shellconf.New()
	if err := bootloader.SourceGrubDefaults(h.Paths, func(_ string, v *shellconf.Vars) { vars.Merge(v) }); err != nil {
		return ""
	}
	if !vars.Known("GRUB_TOP_LEVEL") {
		return ""
	}
	return vars.Get("GRUB_TOP_LEVEL")
}
