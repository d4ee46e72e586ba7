package host

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// dpkgCases are versions 10_linux compares on GRUB 2.06, after its
// rewrite, the ones dpkg refuses or only warns about, and its blank ones.
var dpkgCases = []string{
	"5.15.0-1085-azure", "5.15.0-151-generic", "6.12.0~rc7-amd64", "6.12.0-1-amd64",
	"6.1.0-13-amd64~old", "6.5.0-0.deb12.4-amd64", "1:1.0", "1.0-", "a:1.0", "1:",
	"abc", "1.0_x-1", "0001.02", "1.2~", "1.0-1-2", "1.0-1.5",
	"", "<unknown>", "~",
}

// TestDebVersionsMatchDpkg compares every pair as dpkg --compare-versions
// a gt b does (exit 0 yes, 1 no, 2 refused: false to a shell "if").
func TestDebVersionsMatchDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg")
	}
	for _, a := range dpkgCases {
		for _, b := range dpkgCases {
			err := exec.Command("dpkg", "--compare-versions", a, "gt", b).Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			want := err == nil
			if got := dpkgGt(a, b); got != want {
				t.Errorf("%q gt %q: got %v, dpkg says %v (%v)", a, b, got, want, err)
			}
		}
	}
}

// TestFilevercmpMatchesSortV sorts lines as LC_ALL=C sort -V -r does,
// hidden names and file suffixes included.
func TestFilevercmpMatchesSortV(t *testing.T) {
	if _, err := exec.LookPath("sort"); err != nil {
		t.Skip("no sort")
	}
	lines := []string{
		"/boot/vmlinuz-5.15.0-1085-azure 2", "/boot/vmlinuz-5.15.0-151-generic 2",
		"/boot/vmlinuz-6.1.0-13-amd64 1", "/boot/vmlinuz-6.1.0-13-amd64 2", "/boot/vmlinuz-6.12.0-rc7-amd64 2",
		"a.tar.gz", "a.tar.gz~", "a-1.2.tar.gz", "a-1.10.tar.gz", "a-1.2~rc1.tar.gz", ".", "..", ".hidden",
		".hidden2", "~", "a~", "a", "b1", "b01", "b001", "x.0", "x.a", "x.~", "a-1.2.tar.gz.old",
		"1.2.3", "1.2.3a", "1.2.3-a", "1.2.3+b", "1.02.3", "zz", "z.Z",
	}
	cmd := exec.Command("sort", "-V", "-r")
	cmd.Env = append(cmd.Environ(), "LC_ALL=C")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	got := slices.Clone(lines)
	slices.SortFunc(got, func(a, b string) int { return -sortVLine(a, b) })
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestGrubTildeRewrite is version_test_gt's sed on GRUB 2.06.
func TestGrubTildeRewrite(t *testing.T) {
	for in, want := range map[string]string{
		"/boot/vmlinuz-6.12.0-rc7-amd64":       "6.12.0~rc7-amd64",
		"/boot/vmlinuz-6.1.0-13-amd64.old":     "6.1.0-13-amd64~old",
		"/boot/vmlinuz-6.13.0-trunk-amd64":     "6.13.0~trunk-amd64",
		"/boot/vmlinuz-6.14.0_git1-pre2.test":  "6.14.0~git1~pre2~test",
		"/boot/vmlinuz-6.1.0-13-rt-amd64":      "6.1.0-13-rt-amd64",
		"/boot/vmlinuz-6.1.0-13-cloud-amd64":   "6.1.0-13-cloud-amd64",
		"/boot/vmlinuz-6.1.0-13-oldstable-rcx": "6.1.0-13~oldstable~rcx",
		"vmlinuz":                              "vmlinuz",
	} {
		if got := grubTildeRewrite(in); got != want {
			t.Errorf("grubTildeRewrite(%q) = %q, want %q", in, got, want)
		}
	}
}
