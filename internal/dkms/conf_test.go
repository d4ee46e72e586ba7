package dkms

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

func parse(t *testing.T, s string) *Conf {
	t.Helper()
	return ParseConf(strings.NewReader(s), "dkms.conf")
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
	if !c.Known("AUTOINSTALL") || !c.Known("BUILD_DEPENDS") {
		t.Error("plain assignments are not known")
	}
	if c.Known("MAKE") {
		t.Error("MAKE holds expansions but is known")
	}
	if !c.Known("BUILD_EXCLUSIVE_KERNEL") {
		t.Error("a trailing literal $ made BUILD_EXCLUSIVE_KERNEL unknown")
	}
	// A " in a value breaks dkms's second reading of it (safe_source).
	if c.Known("ESCAPED") {
		t.Error(`a value holding " is known`)
	}
}

func TestParseConfArrays(t *testing.T) {
	c := parse(t, `BUILD_DEPENDS=(one "two three")`)
	if got := c.BuildDepends(); !reflect.DeepEqual(got, []string{"one", "two", "three"}) {
		t.Errorf("array BuildDepends = %q", got)
	}
	c = parse(t, "BUILD_DEPENDS[1]=b\nBUILD_DEPENDS[0]=a\n")
	if got := c.BuildDepends(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("indexed BuildDepends = %q", got)
	}
}

// A value dkms-guard cannot evaluate never decides (issue 5, defect 3).
func TestUnknownDecidesNothing(t *testing.T) {
	// $'^6\\.' is ^6\. to bash, which matches 6.1.0-56: never "unsupported".
	c := parse(t, `BUILD_EXCLUSIVE_KERNEL=$'^6\\.'`)
	if why := c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil }); why != "" {
		t.Errorf("$'...' decided: %s", why)
	}
	// A file bash would still half-source is unknown throughout, never skipped.
	c = parse(t, "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^5\"\nfi\n")
	if c.Known("AUTOINSTALL") || c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil }) != "" {
		t.Errorf("unparsable dkms.conf decided: %s", c.Why("AUTOINSTALL"))
	}
	// Too deeply nested to parse safely: unknown throughout, left to dkms.
	c = parse(t, "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^5\"\nX="+strings.Repeat("$(", shellconf.MaxStructure)+"\n")
	if c.Known("AUTOINSTALL") || c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil }) != "" ||
		!strings.Contains(c.Why("AUTOINSTALL"), "too many brackets") {
		t.Errorf("deeply nested dkms.conf decided: %s", c.Why("AUTOINSTALL"))
	}
	// A loop sets its variable; a function shadowing a harmless command is not harmless.
	for _, conf := range []string{
		"BUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\nfor BUILD_EXCLUSIVE_KERNEL in '^6'; do :; done\n",
		"BUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\necho() { BUILD_EXCLUSIVE_KERNEL=^6; }\necho hi\n",
	} {
		if why := parse(t, conf).Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil }); why != "" {
			t.Errorf("%q decided: %s", conf, why)
		}
	}
}

// dkms re-reads every value inside double quotes (safe_source): what it
// ends up with is what counts.
func TestResourced(t *testing.T) {
	// '^6\\.' is ^6\\. to bash, and ^6\. to dkms after the second sourcing: it matches.
	c := parse(t, `BUILD_EXCLUSIVE_KERNEL='^6\\.'`)
	if c.Get("BUILD_EXCLUSIVE_KERNEL") != `^6\.` || c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil }) != "" {
		t.Errorf("got %q", c.Get("BUILD_EXCLUSIVE_KERNEL"))
	}
	// The common form keeps its backslash both times.
	if c := parse(t, `BUILD_EXCLUSIVE_KERNEL="^5\."`); c.Get("BUILD_EXCLUSIVE_KERNEL") != `^5\.` || !c.Known("BUILD_EXCLUSIVE_KERNEL") {
		t.Errorf("got %q", c.Get("BUILD_EXCLUSIVE_KERNEL"))
	}
	for _, conf := range []string{`OBSOLETE_BY='$x'`, `OBSOLETE_BY='a"b'`, "OBSOLETE_BY='`x`'", "OBSOLETE_BY=$'6.1\\r'"} {
		if c := parse(t, conf); c.Known("OBSOLETE_BY") || c.Why("OBSOLETE_BY") == "" {
			t.Errorf("%s: known", conf)
		}
	}
}

// dkms 3.1.8 and later also source /etc/dkms/M--K.conf: where it exists,
// what dkms sees depends on its version.
func TestNewerOverridesUnknown(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "dkms.conf")
	write(t, conf, "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^5\\.\"\n")
	write(t, filepath.Join(dir, "m--6.1.0-56-amd64.conf"), "BUILD_EXCLUSIVE_KERNEL=\n")
	c, err := ReadConf(conf, dir, "m", "1.0", "6.1.0-56-amd64", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if c.Known("BUILD_EXCLUSIVE_KERNEL") || c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil }) != "" {
		t.Errorf("decided despite m--K.conf: %s", c.Why("BUILD_EXCLUSIVE_KERNEL"))
	}
}

// dkms tests `[[ ! $AUTOINSTALL ]]`: any non-empty value, even "no", is yes.
func TestAutoinstallLikeDKMS(t *testing.T) {
	for in, want := range map[string]bool{`AUTOINSTALL="yes"`: true, `AUTOINSTALL=no`: true, `AUTOINSTALL=""`: false, ``: false} {
		if got, known := parse(t, in).Autoinstall(); got != want || !known {
			t.Errorf("%q: Autoinstall = %v, %v, want %v, true", in, got, known, want)
		}
	}
}

func TestReadConfOverrides(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "dkms.conf")
	etc := filepath.Join(dir, "etc")
	write(t, conf, "AUTOINSTALL=yes\nBUILD_EXCLUSIVE_KERNEL=\"^6\"\n")
	write(t, filepath.Join(etc, "m.conf"), "BUILD_EXCLUSIVE_KERNEL=\"^5\"\n")
	write(t, filepath.Join(etc, "m-1.0-6.1.0-56-amd64.conf"), "AUTOINSTALL=\n")
	c, err := ReadConf(conf, etc, "m", "1.0", "6.1.0-56-amd64", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if auto, _ := c.Autoinstall(); c.Get("BUILD_EXCLUSIVE_KERNEL") != "^5" || auto {
		t.Errorf("overrides not applied in dkms's order: %q, autoinstall %v", c.Get("BUILD_EXCLUSIVE_KERNEL"), auto)
	}
	if _, err := ReadConf(filepath.Join(dir, "missing"), etc, "m", "1.0", "k", "a"); err == nil {
		t.Error("a missing dkms.conf is not an error")
	}
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A dkms.conf that is a FIFO, a device or huge is refused at once: it must
// neither block the hook holding the build lock nor eat its memory.
func TestReadConfRefusesOddFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	write(t, big, "AUTOINSTALL=yes\n"+strings.Repeat("#", MaxConfSize))
	for _, name := range []string{fifo, zero, big, dir} {
		if _, err := ReadConf(name, dir, "m", "1", "k", "a"); err == nil {
			t.Errorf("%s: read", name)
		}
	}
	// A dkms.conf linked out of its own tree is not followed.
	src := filepath.Join(dir, "src")
	secret := filepath.Join(t.TempDir(), "secret")
	write(t, secret, "AUTOINSTALL=yes\n")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(src, "dkms.conf")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConf(filepath.Join(src, "dkms.conf"), dir, "m", "1", "k", "a"); err == nil {
		t.Error("a dkms.conf linked out of its tree was read")
	}
	// An override that is a FIFO is refused as well, not skipped as absent.
	conf := filepath.Join(dir, "dkms.conf")
	write(t, conf, "AUTOINSTALL=yes\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "m.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConf(conf, dir, "m", "1", "k", "a"); !errors.Is(err, file.ErrNotRegular) {
		t.Errorf("FIFO override: %v", err)
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
		if c := ParseConf(strings.NewReader(s), "fuzz"); c != nil {
			c.Unsupported("6.1.0-56-amd64", "x86_64", func() []byte { return nil })
			c.BuildDepends()
		}
	})
}
