package host

import (
	"errors"
	"strconv"
	"strings"
)

// debVersion is a Debian package version split as dpkg splits it
// (lib/dpkg/parsehelp.c, parseversion).
type debVersion struct {
	epoch    int
	upstream string
	revision string
}

// errBadVersion is a version dpkg refuses outright: dpkg --compare-versions
// then exits 2, which a shell "if" takes as false. dpkg's mere warnings
// (no leading digit, an odd character) still compare, as here.
var errBadVersion = errors.New("version has bad syntax")

// parseDebVersion is dpkg's parseversion.
func parseDebVersion(s string) (debVersion, error) {
	s = strings.Trim(s, " \t")
	if s == "" {
		return debVersion{}, errBadVersion
	}
	if strings.ContainsAny(s, " \t") {
		return debVersion{}, errBadVersion
	}
	var v debVersion
	if colon := strings.IndexByte(s, ':'); colon >= 0 {
		epoch, err := strconv.ParseInt(s[:colon], 10, 64)
		// strtol takes a leading sign and spaces; dpkg then refuses a
		// negative epoch, so only an unsigned number passes either way.
		if err != nil || epoch < 0 || epoch > 1<<31-1 || colon+1 == len(s) {
			return debVersion{}, errBadVersion
		}
		v.epoch, s = int(epoch), s[colon+1:]
	}
	v.upstream = s
	if hyphen := strings.LastIndexByte(s, '-'); hyphen >= 0 {
		if hyphen+1 == len(s) {
			return debVersion{}, errBadVersion
		}
		v.upstream, v.revision = s[:hyphen], s[hyphen+1:]
	}
	if v.upstream == "" {
		return debVersion{}, errBadVersion
	}
	return v, nil
}

// dpkgGt is dpkg --compare-versions a gt b as a shell "if" sees it. A
// version dpkg refuses makes it exit 2, false. "" and "<unknown>" are no
// version, older than any (dpkg's cmpversions table: gt is false when a
// is none, true when only b is).
func dpkgGt(a, b string) bool {
	va, err := dpkgArg(a)
	if err != nil {
		return false
	}
	vb, err := dpkgArg(b)
	if err != nil {
		return false
	}
	switch {
	case va == (debVersion{}):
		return false
	case vb == (debVersion{}):
		return true
	}
	return compareDebVersions(va, vb) > 0
}

// dpkgArg parses one argument of --compare-versions; none is the zero
// debVersion, which no version string parses to (its upstream part is
// never empty).
func dpkgArg(s string) (debVersion, error) {
	if s == "" || s == "<unknown>" {
		return debVersion{}, nil
	}
	return parseDebVersion(s)
}

// compareDebVersions is dpkg_version_compare: <0, 0 or >0.
func compareDebVersions(a, b debVersion) int {
	if a.epoch != b.epoch {
		if a.epoch > b.epoch {
			return 1
		}
		return -1
	}
	if c := verrevcmp(a.upstream, b.upstream, dpkgOrder); c != 0 {
		return c
	}
	return verrevcmp(a.revision, b.revision, dpkgOrder)
}

// dpkgOrder is dpkg's order(): '~' before everything, the end of the
// string with digits (0).
var dpkgOrder = charOrder(-1, 0)

// charOrder is verrevcmp's character order: digits 0, letters themselves,
// anything else after letters; '~' and the end of the string are where
// dpkg and gnulib differ.
func charOrder(tilde, end int) func(s string, i int) int {
	return func(s string, i int) int {
		if i >= len(s) {
			return end
		}
		c := s[i]
		switch {
		case isDigit(c):
			return 0
		case isAlpha(c):
			return int(c)
		case c == '~':
			return tilde
		}
		return int(c) + 256
	}
}

// verrevcmp compares alternating non-digit and digit runs, the non-digit
// runs character by character with order, the digit runs as numbers. It
// is dpkg's, and (with gnulib's order) GNU filevercmp's core.
func verrevcmp(a, b string, order func(string, int) int) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			if ac, bc := order(a, i), order(b, j); ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		switch {
		case i < len(a) && isDigit(a[i]):
			return 1
		case j < len(b) && isDigit(b[j]):
			return -1
		case firstDiff != 0:
			return firstDiff
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
