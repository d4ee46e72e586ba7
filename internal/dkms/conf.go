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

	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// MaxConfSize bounds a dkms.conf or override file: real ones are a few
// kilobytes, and a planted 60 MB file must not eat the memory of a hook
// that runs inside dpkg.
const MaxConfSize = 1 << 20

// Conf is what dkms-guard understood of a dkms.conf and its overrides.
type Conf struct {
	*shellconf.Vars
}

// ParseConf reads one dkms.conf-style file.
func ParseConf(r io.Reader, name string) (*Conf, error) {
	v, err := shellconf.Parse(r, name)
	if err != nil {
		return nil, err
	}
	return &Conf{v}, nil
}

// Why says why name's value is not known ("" when it is).
func (c *Conf) Why(name string) string {
	if why := c.Vars.Why(name); why != "" {
		return "dkms.conf " + why
	}
	return ""
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
	} {
		if strings.ContainsRune(n, '/') {
			continue // an odd name must not walk out of /etc/dkms
		}
		files = append(files, filepath.Join(overrideDir, n))
	}
	for i, f := range files {
		data, err := paths.ReadRegular(f, MaxConfSize)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("reading dkms.conf: %w", err)
			}
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		o, err := shellconf.Parse(bytes.NewReader(data), f)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", f, err)
		}
		c.Merge(o)
	}
	return c, nil
}
