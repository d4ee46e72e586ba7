package host

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

func writeCmdline(t *testing.T, root string, pid int, argv ...string) {
	t.Helper()
	data := strings.Join(argv, "\x00") + "\x00"
	if err := os.WriteFile(filepath.Join(root, "proc", strconv.Itoa(pid), "cmdline"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// unattended-upgrades runs dpkg from a forked child of itself, and apt
// runs the hook as sh -c: the main process is the one found.
func TestUnattendedUpgradeIsTheOutermost(t *testing.T) {
	root := t.TempDir()
	h := Host{Paths: paths.New(root)}
	writeStat(t, root, 50, 1, "apt.systemd.dai", 500)
	writeCmdline(t, root, 50, "/bin/sh", "/usr/lib/apt/apt.systemd.daily", "install")
	writeStat(t, root, 100, 50, "unattended-upgr", 1000)
	writeCmdline(t, root, 100, "/usr/bin/python3", "/usr/bin/unattended-upgrade")
	writeStat(t, root, 200, 100, "unattended-upgr", 2000)
	writeCmdline(t, root, 200, "/usr/bin/python3", "/usr/bin/unattended-upgrade")
	writeStat(t, root, 300, 200, "sh", 3000)
	writeCmdline(t, root, 300, "sh", "-c", "/usr/sbin/dkms-guard post-invoke")
	if got, want := h.UnattendedUpgrade(300), (Proc{PID: 100, Start: 1000, Comm: "unattended-upgr"}); got != want {
		t.Errorf("UnattendedUpgrade = %+v, want %+v", got, want)
	}
	// Run by hand, with python's options, or as the program itself.
	writeCmdline(t, root, 100, "/usr/bin/apt-get", "upgrade")
	writeCmdline(t, root, 200, "python3", "-u", "/usr/bin/unattended-upgrades", "-d")
	if got := h.UnattendedUpgrade(300); got.PID != 200 {
		t.Errorf("UnattendedUpgrade = %+v, want pid 200", got)
	}
	writeCmdline(t, root, 200, "/usr/bin/unattended-upgrade")
	if got := h.UnattendedUpgrade(300); got.PID != 200 {
		t.Errorf("UnattendedUpgrade = %+v, want pid 200", got)
	}
}

func TestUnattendedUpgradeNone(t *testing.T) {
	root := t.TempDir()
	h := Host{Paths: paths.New(root)}
	writeStat(t, root, 100, 1, "apt-get", 1000)
	writeCmdline(t, root, 100, "apt-get", "install", "unattended-upgrades")
	writeStat(t, root, 200, 100, "python3", 2000)
	writeCmdline(t, root, 200, "/usr/bin/python3", "/usr/share/unattended-upgrades/unattended-upgrade-shutdown")
	if got := h.UnattendedUpgrade(200); got != (Proc{}) {
		t.Errorf("UnattendedUpgrade = %+v, want none", got)
	}
	if got := h.UnattendedUpgrade(4242); got != (Proc{}) {
		t.Errorf("UnattendedUpgrade of a missing process = %+v, want none", got)
	}
}
