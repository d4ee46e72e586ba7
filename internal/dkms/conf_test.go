package dkms

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, s string) *Conf {
	t.Helper()
	c, err := ParseConf(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseConfValues(t *testing.T) {
	c := parse(t, `
# comment
PACKAGE_NAME="wifi"   # trailing comment
PACKAGE_VERSION='2.0'
AUTOINSTALL=yes
BUILD_DEPENDS[0]="a"
BUILD_DEPENDS[1]="b c"
BUILT_MODULE_NAME[0]="wifi"
MAKE[0]="make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build"
BUILD_EXCLUSIVE_KERNEL="^6\.1\..*$"
ESCAPED="a \"quoted\" word"
MULTI="line one
line two"
`)
	checks := map[string]string{
		"PACKAGE_NAME":           "wifi",
		"PACKAGE_VERSION":        "2.0",
		"AUTOINSTALL":            "yes",
		"BUILD_EXCLUSIVE_KERNEL": `^6\.1\..*$`,
		"ESCAPED":                `a "quoted" word`,
		"MULTI":                  "line one\nline two",
	}
	for k, want := range checks {
		if got := c.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := c.BuildDepends(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("BuildDepends = %q", got)
	}
	if c.Complex {
		t.Error("plain assignments marked complex")
	}
	if c.Known("MAKE") {
		t.Error("MAKE holds expansions but is known")
	}
	if !c.Known("BUILD_EXCLUSIVE_KERNEL") {
		t.Error("a trailing literal $ made BUILD_EXCLUSIVE_KERNEL unknown")
	}
}

func TestParseConfArraysAndComplex(t *testing.T) {
	c := parse(t, `BUILD_DEPENDS=(one "two three")`)
	if got := c.BuildDepends(); !reflect.DeepEqual(got, []string{"one", "two", "three"}) {
		t.Errorf("array BuildDepends = %q", got)
	}
	c = parse(t, "if [ \"$kernelver\" = x ]; then\nBUILD_EXCLUSIVE_KERNEL=\"^5\"\nfi\n")
	if !c.Complex || c.Known("BUILD_EXCLUSIVE_KERNEL") {
		t.Error("conditional conf not marked complex")
	}
	c = parse(t, `OBSOLETE_BY="$(uname -r)"`)
	if c.Known("OBSOLETE_BY") {
		t.Error("command substitution read as a value")
	}
	c = parse(t, `UNTERMINATED="abc`)
	if !c.Complex {
		t.Error("an open quote at the end must make the conf complex")
	}
}

// dkms tests `[[ ! $AUTOINSTALL ]]`: any non-empty value, even "no", is yes.
func TestAutoinstallLikeDKMS(t *testing.T) {
	for in, want := range map[string]bool{`AUTOINSTALL="yes"`: true, `AUTOINSTALL=no`: true, `AUTOINSTALL=""`: false, ``: false} {
		if got := parse(t, in).Autoinstall(); got != want {
			t.Errorf("%q: Autoinstall = %v, want %v", in, got, want)
		}
	}
}

func TestReadConfOverrides(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "dkms.conf")
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(conf, []byte("AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^6\"\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "m.conf"), []byte("BUILD_EXCLUSIVE_KERNEL=\"^5\"\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "m-1.0-6.1.0-56-amd64.conf"), []byte("AUTOINSTALL=\n"), 0o644)
	c, err := ReadConf(conf, etc, "m", "1.0", "6.1.0-56-amd64", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if c.Get("BUILD_EXCLUSIVE_KERNEL") != "^5" || c.Autoinstall() {
		t.Errorf("overrides not applied in dkms's order: %q, autoinstall %v", c.Get("BUILD_EXCLUSIVE_KERNEL"), c.Autoinstall())
	}
	if _, err := ReadConf(filepath.Join(dir, "missing"), etc, "m", "1.0", "k", "a"); err == nil {
		t.Error("a missing dkms.conf is not an error")
	}
}

func TestUnsupported(t *testing.T) {
	cfg := []byte("CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n")
	kconfig := func() []byte { return cfg }
	noConfig := func() []byte { return nil }
	cases := []struct {
		conf, kernel string
		kc           func() []byte
		unsupported  bool
	}{
		{`BUILD_EXCLUSIVE_KERNEL="^5\."`, "6.1.0-56-amd64", kconfig, true},
		{`BUILD_EXCLUSIVE_KERNEL="^6\.1\."`, "6.1.0-56-amd64", kconfig, false},
		{`BUILD_EXCLUSIVE_KERNEL="amd64$"`, "6.1.0-56-amd64", kconfig, false},
		{`BUILD_EXCLUSIVE_KERNEL="(unclosed"`, "6.1.0-56-amd64", kconfig, false},
		{`BUILD_EXCLUSIVE_ARCH="aarch64"`, "6.1.0-56-amd64", kconfig, true},
		{`BUILD_EXCLUSIVE_ARCH="x86_64|i.86"`, "6.1.0-56-amd64", kconfig, false},
		{`BUILD_EXCLUSIVE_CONFIG="CONFIG_A CONFIG_B"`, "6.1.0-56-amd64", kconfig, false},
		{`BUILD_EXCLUSIVE_CONFIG="CONFIG_C"`, "6.1.0-56-amd64", kconfig, true},
		{`BUILD_EXCLUSIVE_CONFIG="!CONFIG_A"`, "6.1.0-56-amd64", kconfig, true},
		{`BUILD_EXCLUSIVE_CONFIG="CONFIG_C"`, "6.1.0-56-amd64", noConfig, false},
		{`OBSOLETE_BY="6.1.0-50"`, "6.1.0-56-amd64", kconfig, true},
		{`OBSOLETE_BY="6.1.0-56"`, "6.1.0-56-amd64", kconfig, true},
		{`OBSOLETE_BY="6.1.0-60"`, "6.1.0-56-amd64", kconfig, false},
		{`OBSOLETE_BY="6.1.0"`, "6.1.0-56-amd64", kconfig, true},
		{`OBSOLETE_BY="5.10.0"`, "6.1.0-56-amd64", kconfig, true},
		{`OBSOLETE_BY="6.5"`, "6.1.0-56-amd64", kconfig, false},
		{`BUILD_EXCLUSIVE_KERNEL="^${X}"`, "6.1.0-56-amd64", kconfig, false},
	}
	for _, tc := range cases {
		why := parse(t, tc.conf).Unsupported(tc.kernel, "x86_64", tc.kc)
		if (why != "") != tc.unsupported {
			t.Errorf("%s on %s: reason %q, want unsupported=%v", tc.conf, tc.kernel, why, tc.unsupported)
		}
	}
	var nilConf *Conf
	if nilConf.Unsupported("k", "a", noConfig) != "" {
		t.Error("a conf that could not be read decides")
	}
}

func TestVER(t *testing.T) {
	if got := VER("2.6.9-1cvs200409091247"); got != "002.006.009-001cvs200409091247" {
		t.Errorf("VER = %q (dkms's own example)", got)
	}
	ordered := []string{"1.0", "1.2", "1.10", "2.0", "10.0"}
	for i := 1; i < len(ordered); i++ {
		if !VersionLess(ordered[i-1], ordered[i]) {
			t.Errorf("%s is not older than %s", ordered[i-1], ordered[i])
		}
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add("A=\"b\"\nB[1]='c'\nC=(d e)\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConf(strings.NewReader(s))
		if err == nil {
			c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil })
			c.BuildDepends()
		}
	})
}
