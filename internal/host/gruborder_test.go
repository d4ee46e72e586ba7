package host

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/paths"
)

// grubFixture is one grub.cfg made by testdata/grub-order/gen.sh: the
// real grub-mkconfig and 10_linux of a Debian grub-common package run over
// a fake /boot holding kernels.txt.
type grubFixture struct {
	grubVersion string
	topLevel    string
	menu        []string // the kernels of the "Advanced options" entries, in order
}

var advancedEntry = regexp.MustCompile(`\$menuentry_id_option 'gnulinux-(.*)-advanced-[0-9a-f-]+'`)

func readGrubFixture(t *testing.T, name string) grubFixture {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fx grubFixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# grub-common: "); ok {
			fx.grubVersion = v
		}
		if v, ok := strings.CutPrefix(line, "# GRUB_TOP_LEVEL: "); ok && v != "(unset)" {
			fx.topLevel = v
		}
		if m := advancedEntry.FindStringSubmatch(line); m != nil {
			fx.menu = append(fx.menu, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if fx.grubVersion == "" || len(fx.menu) == 0 {
		t.Fatalf("%s: no grub-common version or no menu entries", name)
	}
	return fx
}

func fixtureKernels(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "grub-order", "kernels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// orderOf is which order a Debian grub-common release uses.
func orderOf(t *testing.T, grubVersion string) GrubOrder {
	switch {
	case strings.HasPrefix(grubVersion, "2.06"):
		return FindLatest
	case strings.HasPrefix(grubVersion, "2.12"):
		return VersionSort
	}
	t.Fatalf("no known order for grub-common %s", grubVersion)
	return 0
}

// TestGrubOrderGolden: dkms-guard lists the kernels in exactly the order
// of the menu the real grub-mkconfig made, for both Debian releases, with
// and without GRUB_TOP_LEVEL.
func TestGrubOrderGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "grub-order", "grub-*.cfg"))
	if err != nil || len(files) < 4 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	kernels := fixtureKernels(t)
	// The fixtures must tell the orders apart, or this test proves nothing.
	ver := slices.Clone(kernels)
	slices.SortFunc(ver, func(a, b string) int { return strings.Compare(dkms.VER(b), dkms.VER(a)) })
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			fx := readGrubFixture(t, name)
			if !sameSet(fx.menu, kernels) {
				t.Fatalf("the menu's kernels are not kernels.txt: %q", fx.menu)
			}
			got := SortGrub(orderOf(t, fx.grubVersion), shuffled(kernels), fx.topLevel)
			if !slices.Equal(got, fx.menu) {
				t.Errorf("grub-common %s, GRUB_TOP_LEVEL=%q:\n got %q\nwant %q", fx.grubVersion, fx.topLevel, got, fx.menu)
			}
			if slices.Equal(ver, fx.menu) {
				t.Error("dkms's VER order gives the same menu: the fixture cannot catch it")
			}
		})
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// shuffled reverses and rotates, so that no order of the input survives.
func shuffled(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return append(out[len(out)/3:], out[:len(out)/3]...)
}

// TestKernelsFollowGrub: Kernels reads which GRUB is installed and
// GRUB_TOP_LEVEL, and lists /lib/modules in that GRUB's order.
func TestKernelsFollowGrub(t *testing.T) {
	kernels := []string{"5.15.0-151-generic", "5.15.0-1085-azure", "6.12.0-1-amd64", "6.12.0-rc7-amd64"}
	for _, tc := range []struct {
		name, script, defaults string
		want                   []string
	}{
		{
			name:   "grub 2.06",
			script: "  linux=`version_find_latest $list`\n",
			want:   []string{"6.12.0-1-amd64", "6.12.0-rc7-amd64", "5.15.0-1085-azure", "5.15.0-151-generic"},
		},
		{
			name:   "grub 2.12",
			script: "reverse_sorted_list=$(echo $list | tr ' ' '\\n' | sed -e 's/\\.old$/ 1/; / 1$/! s/$/ 2/' | version_sort -r | sed -e 's/ 1$/.old/; s/ 2$//')\n",
			want:   []string{"6.12.0-rc7-amd64", "6.12.0-1-amd64", "5.15.0-1085-azure", "5.15.0-151-generic"},
		},
		{
			name:     "grub 2.12, GRUB_TOP_LEVEL",
			script:   "version_sort -r\n",
			defaults: "GRUB_TOP_LEVEL=/boot/vmlinuz-5.15.0-151-generic\n",
			want:     []string{"5.15.0-151-generic", "6.12.0-rc7-amd64", "6.12.0-1-amd64", "5.15.0-1085-azure"},
		},
		{
			name:     "GRUB_TOP_LEVEL from an expansion is not known",
			script:   "version_sort -r\n",
			defaults: "GRUB_TOP_LEVEL=/boot/vmlinuz-$(uname -r)\n",
			want:     []string{"6.12.0-rc7-amd64", "6.12.0-1-amd64", "5.15.0-1085-azure", "5.15.0-151-generic"},
		},
		{
			name:     "GRUB 2.06 ignores GRUB_TOP_LEVEL",
			script:   "version_find_latest\n",
			defaults: "GRUB_TOP_LEVEL=/boot/vmlinuz-5.15.0-151-generic\n",
			want:     []string{"6.12.0-1-amd64", "6.12.0-rc7-amd64", "5.15.0-1085-azure", "5.15.0-151-generic"},
		},
		{
			name: "no GRUB",
			want: []string{"6.12.0-rc7-amd64", "6.12.0-1-amd64", "5.15.0-1085-azure", "5.15.0-151-generic"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			h := Host{Paths: paths.New(root)}
			for _, k := range kernels {
				mkdir(t, filepath.Join(h.Paths.ModulesDir(), k))
			}
			if tc.script != "" {
				write(t, h.Paths.GrubLinuxScript(), tc.script)
			}
			if tc.defaults != "" {
				write(t, filepath.Join(h.Paths.GrubDefaultsDir(), "top.cfg"), tc.defaults)
			}
			got, err := h.Kernels()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Kernels = %q, want %q", got, tc.want)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, name, data string) {
	t.Helper()
	mkdir(t, filepath.Dir(name))
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A grub.d file linked to /dev/null sets nothing, as grub-mkconfig
// sources it: GRUB_TOP_LEVEL in a later file still counts.
func TestGrubTopLevelPastMaskedFile(t *testing.T) {
	h := Host{Paths: paths.New(t.TempDir())}
	write(t, h.Paths.GrubLinuxScript(), "version_sort -r\n")
	write(t, filepath.Join(h.Paths.GrubDefaultsDir(), "top.cfg"), "GRUB_TOP_LEVEL=/boot/vmlinuz-5.15.0-151-generic\n")
	if err := os.Symlink("/dev/null", filepath.Join(h.Paths.GrubDefaultsDir(), "50-masked.cfg")); err != nil {
		t.Fatal(err)
	}
	if order, top := h.Grub(); order != VersionSort || top != "/boot/vmlinuz-5.15.0-151-generic" {
		t.Errorf("Grub() = %v, %q; want version_sort with GRUB_TOP_LEVEL", order, top)
	}
}
