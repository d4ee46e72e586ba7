// Package dkms reads dkms's tree and dkms.conf files and runs dkms.
//
// dkms.conf is a bash fragment that dkms sources (read_conf in
// /usr/sbin/dkms). dkms-guard never runs it: shellconf reads it, and a
// value counts only when dkms would certainly see the same one. An unknown
// value never decides anything: the module is handed to dkms, whose exit
// status (77 for "unsupported") decides. The values only ever skip work
// dkms would refuse anyway (BUILD_EXCLUSIVE_*, OBSOLETE_BY) or order the
// work (BUILD_DEPENDS).
package dkms

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// MaxConfSize bounds a dkms.conf or override file: real ones are a few
// kilobytes, and a planted 60 MB file must not eat the memory of a hook
// that runs inside dpkg.
const MaxConfSize = 1 << 20

// Conf is what dkms-guard understood of a dkms.conf and its overrides.
//
// NOTE(dkms-guard): dkms does not keep what bash assigned. Its read_conf
// sources each file in a subshell that prints every value back as
// NAME[i]="value", and sources that output again (safe_source in dkms
// 3.0.10 and 3.2.2). So a value is re-read inside double quotes: \\
// becomes \, and a value holding " $ or ` would change or break. Conf
// reads values as dkms ends up with them, and such values as unknown.
type Conf struct {
	*shellconf.Vars
}

// ParseConf reads one dkms.conf-style file. A file the parser refuses is
// not an error but unknown throughout: bash, which dkms sources it with,
// still runs every line before the error.
func ParseConf(r io.Reader, name string) *Conf {
	v, err := shellconf.Parse(r, name)
	if err != nil {
		return &Conf{shellconf.Opaque(fmt.Sprintf("cannot be parsed (%v)", err))}
	}
	return &Conf{v}
}

// resourced is what dkms's second sourcing makes of a value, and whether
// dkms-guard can tell: " ends the quotes early, ` and a $ that starts an
// expansion run something, and a CR is stripped by some dkms versions only.
func resourced(v string) (string, bool) {
	if strings.ContainsAny(v, "\"`\r") {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '$' && expands(v, i) {
			return "", false
		}
	}
	return shellconf.UnescapeDouble(v), true
}

// expands tells whether the $ at s[i] starts an expansion inside double
// quotes; a $ at the end (the closing quote follows) or before anything
// else is a literal $, common at the end of a BUILD_EXCLUSIVE_KERNEL.
func expands(s string, i int) bool {
	if i+1 >= len(s) {
		return false
	}
	c := s[i+1]
	return c == '_' || c == '{' || c == '(' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || strings.IndexByte("@*#?$!-", c) >= 0
}

// Known tells whether name's value was read as dkms would see it.
func (c *Conf) Known(name string) bool {
	if !c.Vars.Known(name) {
		return false
	}
	for _, e := range c.Vars.Elements(name) {
		if _, ok := resourced(e); !ok {
			return false
		}
	}
	return true
}

// Why says why name's value is not known ("" when it is).
func (c *Conf) Why(name string) string {
	if why := c.Vars.Why(name); why != "" {
		return "dkms.conf " + why
	}
	if !c.Known(name) {
		return "dkms.conf gives " + name + " a value that dkms's second reading changes (a \", ` or $)"
	}
	return ""
}

// Get is $NAME as dkms sees it (see Known).
func (c *Conf) Get(name string) string {
	v, _ := resourced(c.Vars.Get(name))
	return v
}

// List is ${NAME[@]} split into words, as dkms sees it.
func (c *Conf) List(name string) []string {
	var out []string
	for _, e := range c.Vars.Elements(name) {
		v, _ := resourced(e)
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// Autoinstall mirrors `[[ ! $AUTOINSTALL ]]` in dkms's autoinstall: any
// non-empty value, even "no", means yes. known is false when dkms-guard
// cannot tell; the caller must then let dkms decide, never skip silently.
func (c *Conf) Autoinstall() (yes, known bool) {
	return c.Get("AUTOINSTALL") != "", c.Known("AUTOINSTALL")
}

// BuildDepends lists the modules that must be installed first, as far as
// they are known; a nil conf (unreadable) has none.
func (c *Conf) BuildDepends() []string {
	if c == nil {
		return nil
	}
	return c.List("BUILD_DEPENDS")
}

// readConfFile reads a dkms.conf or an override without following a link
// out of its own directory: the module's source tree (the directory the
// M/V/source link leads to) or /etc/dkms.
func readConfFile(name string) ([]byte, error) {
	dir, err := filepath.EvalSymlinks(filepath.Dir(name))
	if err != nil {
		return nil, err
	}
	return file.ReadRegularIn(dir, filepath.Base(name), MaxConfSize)
}

// ReadConf reads a module's dkms.conf and the overrides dkms's read_conf
// sources after it, in the same order: /etc/dkms/M.conf, M-V.conf,
// M-V-K.conf, M-V-K-A.conf.
func ReadConf(confFile, overrideDir, module, version, kernel, arch string) (*Conf, error) {
	c := &Conf{shellconf.New()}
	files := []string{confFile}
	for _, n := range []string{
		module + ".conf",
		module + "-" + version + ".conf",
		module + "-" + version + "-" + kernel + ".conf",
		module + "-" + version + "-" + kernel + "-" + arch + ".conf",
		// dkms 3.1.8 and later only: where they exist, what dkms sees
		// depends on its version, so nothing is known.
		module + "--" + kernel + ".conf",
		module + "--" + kernel + "-" + arch + ".conf",
	} {
		if strings.ContainsRune(n, '/') {
			continue // an odd name must not walk out of /etc/dkms
		}
		files = append(files, filepath.Join(overrideDir, n))
	}
	for i, f := range files {
		data, err := readConfFile(f)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("reading dkms.conf: %w", err)
			}
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		o := ParseConf(bytes.NewReader(data), f)
		if strings.Contains(filepath.Base(f), "--") {
			o.Merge(shellconf.Opaque("is overridden by " + filepath.Base(f) + ", which only dkms 3.1.8 and later read"))
		}
		c.Merge(o.Vars)
	}
	return c, nil
}
