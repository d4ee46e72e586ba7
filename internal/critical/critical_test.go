package critical

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
)

// write puts text at name below root, making its directories.
func write(t *testing.T, root, name, text string) {
	t.Helper()
	full := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A line longer than bufio.Scanner's 64 KiB limit must not hide the lines
// after it (issue 14, item 12).
func TestLongLinesKeepLaterLines(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("lowerdir=/var/lib/containers/layer,", 4000) // ~140 KiB
	write(t, root, "proc/self/mounts", "overlay /var/lib/containers/x overlay rw,"+long+" 0 0\n"+
		"rpool/ROOT/debian / zfs rw,relatime,xattr,noacl 0 0\n"+
		"bpool/BOOT/debian /boot zfs rw 0 0\n")
	write(t, root, "etc/initramfs-tools/modules", "# "+long+"\nzfs\nnvidia-drm modeset=1\n")
	var buf strings.Builder
	f := Finder{Paths: paths.New(root), Report: report.New(&buf)}

	fsTypes := f.bootFileSystems()
	if fsTypes["/"] != "zfs" || fsTypes["/boot"] != "zfs" {
		t.Errorf("bootFileSystems = %v, want / and /boot on zfs", fsTypes)
	}
	listed := f.listedModules()
	var names []string
	for m := range listed {
		names = append(names, m)
	}
	slices.Sort(names)
	if want := []string{"nvidia_drm", "zfs"}; !slices.Equal(names, want) {
		t.Errorf("listedModules = %v, want %v", names, want)
	}
	if buf.Len() > 0 {
		t.Errorf("unexpected report lines:\n%s", buf.String())
	}
}

// A mounts file of many MB (thousands of container mounts) is read to its
// end: the "/ zfs" line after 17 MiB of overlays still counts.
func TestHugeMountsFile(t *testing.T) {
	root := t.TempDir()
	line := "overlay /var/lib/docker/overlay2/0123456789abcdef/merged overlay rw,lowerdir=" + strings.Repeat("l", 400) + " 0 0\n"
	write(t, root, "proc/self/mounts", strings.Repeat(line, (17<<20)/len(line)+1)+"rpool/ROOT/debian / zfs rw 0 0\n")
	var buf strings.Builder
	f := Finder{Paths: paths.New(root), Report: report.New(&buf)}
	if got := f.bootFileSystems()["/"]; got != "zfs" || buf.Len() > 0 {
		t.Errorf("/ is %q, want zfs; report:\n%s", got, buf.String())
	}
}
