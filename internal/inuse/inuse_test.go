package inuse

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/critical"
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

// link makes name below root a symbolic link to target.
func link(t *testing.T, root, name, target string) {
	t.Helper()
	full := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		t.Fatal(err)
	}
}

var built = critical.Built{
	"nvidia":       {"nvidia", "nvidia_drm", "nvidia_modeset"},
	"v4l2loopback": {"v4l2loopback"},
	"wg":           {"wireguard"},
	"vbox":         {"vboxdrv", "vbox_netflt"},
	"zfs":          {"zfs", "spl"},
	"unused":       {"unused"},
	"masked":       {"maskedmod"},
	"early":        {"earlymod"},
}

func find(t *testing.T, root string) (Reasons, string) {
	t.Helper()
	var out strings.Builder
	f := Finder{Paths: paths.New(root), Report: report.New(&out)}
	return f.Find(built), out.String()
}

// Every source counts, names match with - and _ alike, and systemd's
// precedence and masking hold.
func TestFind(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/modules", "nvidia_drm 73728 4 - Live 0x0000000000000000\nnvidia 56623104 1 nvidia_drm, Live 0x0\n")
	write(t, root, "etc/modules", "# /etc/modules\nv4l2loopback exclusive_caps=1\n")
	link(t, root, "etc/modules-load.d/modules.conf", "../modules") // Debian's kmod: read once
	write(t, root, "etc/modules-load.d/wg.conf", "; VPN\nwireguard\n")
	write(t, root, "usr/lib/modules-load.d/wg.conf", "zfs\n") // masked by /etc's wg.conf
	link(t, root, "etc/modules-load.d/vbox.conf", "/dev/null")
	write(t, root, "usr/lib/modules-load.d/vbox.conf", "maskedmod\n") // masked by the /dev/null link
	write(t, root, "lib/modules-load.d/vbox-net.conf", "vbox-netflt\n")
	write(t, root, "run/modules-load.d/notconf.txt", "unused\n")
	write(t, root, "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=UUID=1 ro quiet rd.modules-load=earlymod,nvidia-modeset\n")
	got, said := find(t, root)
	want := Reasons{
		"nvidia":       {"loaded now", "loaded at boot by rd.modules-load= on the kernel command line"},
		"v4l2loopback": {"loaded at boot by /etc/modules"},
		"wg":           {"loaded at boot by /etc/modules-load.d/wg.conf"},
		"vbox":         {"loaded at boot by /lib/modules-load.d/vbox-net.conf"},
		"early":        {"loaded at boot by rd.modules-load= on the kernel command line"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Find =\n%v\nwant\n%v", got, want)
	}
	if said != "" {
		t.Errorf("said %q", said)
	}
}

// Inside a chroot (pid 1's root is elsewhere) or a container, /proc is
// the host's: loaded modules and the kernel command line do not count,
// the configuration does.
func TestConfined(t *testing.T) {
	for name, mark := range map[string]func(t *testing.T, root string){
		"chroot":         func(t *testing.T, root string) { link(t, root, "proc/1/root", t.TempDir()) },
		"nspawn":         func(t *testing.T, root string) { write(t, root, "run/systemd/container", "systemd-nspawn\n") },
		"docker":         func(t *testing.T, root string) { write(t, root, ".dockerenv", "") },
		"lxc environ":    func(t *testing.T, root string) { write(t, root, "proc/1/environ", "PATH=/bin\x00container=lxc\x00") },
		"host (control)": nil,
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, "proc/modules", "nvidia 1 0 - Live 0x0\n")
			write(t, root, "proc/cmdline", "modules-load=earlymod\n")
			write(t, root, "etc/modules-load.d/wg.conf", "wireguard\n")
			if mark == nil {
				link(t, root, "proc/1/root", root) // pid 1 shares the root
			} else {
				mark(t, root)
			}
			got, _ := find(t, root)
			want := Reasons{"wg": {"loaded at boot by /etc/modules-load.d/wg.conf"}}
			if mark == nil {
				want["nvidia"] = []string{"loaded now"}
				want["early"] = []string{"loaded at boot by modules-load= on the kernel command line"}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Find = %v, want %v", got, want)
			}
		})
	}
}

// Nothing to read (no /proc in a bare chroot) is nothing in use, silently;
// a file that cannot be read is one warning.
func TestUnreadable(t *testing.T) {
	root := t.TempDir()
	if got, said := find(t, root); len(got) != 0 || said != "" {
		t.Errorf("empty root: %v, said %q", got, said)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, said := find(t, root)
	if len(got) != 0 || strings.Count(said, "W: ") != 1 || !strings.Contains(said, "/proc/modules") {
		t.Errorf("a directory as /proc/modules: %v, said %q", got, said)
	}
}

// A module loaded now is a DKMS module's only when dkms installed that
// one for the running kernel: else it is the kernel's own of that name.
func TestLoadedIsOurs(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/modules", "nvidia 1 0 - Live 0x0\nwireguard 1 0 - Live 0x0\n")
	write(t, root, "etc/modules-load.d/wg.conf", "wireguard\n")
	var out strings.Builder
	f := Finder{Paths: paths.New(root), Report: report.New(&out), Running: func(m string) bool { return m == "nvidia" }}
	want := Reasons{"nvidia": {"loaded now"}, "wg": {"loaded at boot by /etc/modules-load.d/wg.conf"}}
	if got := f.Find(built); !reflect.DeepEqual(got, want) {
		t.Errorf("Find = %v, want %v", got, want)
	}
}

// systemd takes modules_load= as modules-load= (a command-line key's - and
// _ are alike), quoted or not.
func TestCmdlineUnderscore(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/cmdline", `root=/dev/sda1 modules_load=earlymod "rd.modules_load=v4l2loopback"`+"\n")
	got, _ := find(t, root)
	want := Reasons{
		"early":        {"loaded at boot by modules_load= on the kernel command line"},
		"v4l2loopback": {"loaded at boot by rd.modules_load= on the kernel command line"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Find = %v, want %v", got, want)
	}
}

// As systemd lists modules-load.d: a hidden file and a directory are not
// files of it, so neither loads anything nor masks a later directory's
// file of that name.
func TestHiddenAndDirectoriesAreNotConf(t *testing.T) {
	root := t.TempDir()
	write(t, root, "etc/modules-load.d/.vbox.conf", "vboxdrv\n")
	write(t, root, "etc/modules-load.d/wg.conf/x", "")
	write(t, root, "usr/lib/modules-load.d/wg.conf", "wireguard\n")
	got, said := find(t, root)
	want := Reasons{"wg": {"loaded at boot by /usr/lib/modules-load.d/wg.conf"}}
	if !reflect.DeepEqual(got, want) || said != "" {
		t.Errorf("Find = %v, said %q; want %v", got, said, want)
	}
}
