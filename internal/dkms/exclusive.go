package dkms

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// VER is dkms's VER(): every run of digits padded to at least three digits,
// so that plain string comparison orders versions ("2.6.9" < "2.6.10").
func VER(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		digit := s[i] >= '0' && s[i] <= '9'
		for j < len(s) && (s[j] >= '0' && s[j] <= '9') == digit {
			j++
		}
		if digit && j-i < 3 {
			b.WriteString(strings.Repeat("0", 3-(j-i)))
		}
		b.WriteString(s[i:j])
		i = j
	}
	return b.String()
}

// VersionLess orders module versions the way dkms's autoinstall picks "the
// latest version we have hanging around".
func VersionLess(a, b string) bool { return VER(a) < VER(b) }

var kconfigName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_]+$`) })

// Unsupported tells whether the module must not be built for kernel/arch,
// with the reason, deciding only what dkms would decide (prepare_build's
// build_exclude, check_version_sanity's OBSOLETE_BY). kconfig returns the
// kernel's .config, or nil when it is not there (dkms then ignores
// BUILD_EXCLUSIVE_CONFIG too). When the conf is too complex to read
// safely, or a pattern is not one Go can evaluate, it answers "" and dkms
// decides (exit 77).
func (c *Conf) Unsupported(kernel, arch string, kconfig func() []byte) string {
	if c == nil {
		return ""
	}
	for _, v := range []string{"BUILD_EXCLUSIVE_KERNEL", "BUILD_EXCLUSIVE_ARCH", "BUILD_EXCLUSIVE_CONFIG", "OBSOLETE_BY"} {
		if !c.Known(v) {
			return "" // it depends on something only bash knows: dkms decides
		}
	}
	if re := c.Get("BUILD_EXCLUSIVE_KERNEL"); re != "" {
		if m, ok := bashMatch(kernel, re); ok && !m {
			return fmt.Sprintf(`BUILD_EXCLUSIVE_KERNEL="%s" does not match %s`, re, kernel)
		}
	}
	if re := c.Get("BUILD_EXCLUSIVE_ARCH"); re != "" {
		if m, ok := bashMatch(arch, re); ok && !m {
			return fmt.Sprintf(`BUILD_EXCLUSIVE_ARCH="%s" does not match %s`, re, arch)
		}
	}
	if want := c.Get("BUILD_EXCLUSIVE_CONFIG"); want != "" {
		if cfg := kconfig(); cfg != nil {
			set := kernelConfigSet(cfg)
			for _, k := range strings.Fields(want) {
				neg := strings.HasPrefix(k, "!")
				name := strings.TrimPrefix(k, "!")
				if !kconfigName().MatchString(name) {
					return "" // a pattern for grep -E: leave it to dkms
				}
				if set[name] == neg {
					return fmt.Sprintf(`BUILD_EXCLUSIVE_CONFIG="%s" does not match the configuration of %s`, want, kernel)
				}
			}
		}
	}
	if obs := c.Get("OBSOLETE_BY"); obs != "" && obsolete(kernel, obs) {
		return fmt.Sprintf(`OBSOLETE_BY="%s": %s ships this module itself`, obs, kernel)
	}
	return ""
}

// bashMatch is `[[ $s =~ $re ]]`: an unanchored POSIX ERE search. ok is
// false when the pattern is not one Go's RE2 reads the same way.
func bashMatch(s, re string) (match, ok bool) {
	r, err := regexp.CompilePOSIX(re)
	if err != nil {
		return false, false
	}
	return r.MatchString(s), true
}

func kernelConfigSet(cfg []byte) map[string]bool {
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), "=")
		if ok && (val == "y" || val == "m") {
			set[name] = true
		}
	}
	return set
}

// obsolete is check_version_sanity's OBSOLETE_BY test: the module is
// obsolete on every kernel at or above "UPSTREAM[-ABI]".
func obsolete(kernel, obsBy string) bool {
	obs := strings.FieldsFunc(obsBy, func(r rune) bool { return r == '-' || r == ' ' || r == '\t' })
	my := strings.Split(kernel, "-")
	if len(obs) == 0 || len(my) == 0 || obs[0] == "" || my[0] == "" {
		return false
	}
	switch {
	case VER(my[0]) == VER(obs[0]):
		if len(obs) < 2 {
			return true
		}
		if len(my) < 2 {
			return false
		}
		return VER(my[1]) >= VER(obs[1])
	case VER(my[0]) > VER(obs[0]):
		return true
	}
	return false
}
