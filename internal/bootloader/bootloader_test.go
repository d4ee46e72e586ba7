package bootloader

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

// uuid is the file system UUID gen.sh's grub-probe stub gives.
const uuid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

// grubWith is a Grub over a scratch root whose grub.cfg is testdata/name.
func grubWith(t *testing.T, name string) Grub {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := paths.New(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(p.GrubConfig()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.GrubConfig(), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return Grub{Paths: p}
}

var versions = []string{"2.06-13+deb12u2", "2.12-9+deb13u4"} // Debian 12, Debian 13

// EntryID reads the ids GRUB_DEFAULT takes from real grub.cfg files: the
// submenu's id and the entry's under "Advanced options", the entry's
// alone with GRUB_DISABLE_SUBMENU=y; never a recovery or systemd entry.
func TestEntryIDRealGrubCfg(t *testing.T) {
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			g := grubWith(t, "grub-"+v+"-plain.cfg")
			for _, k := range []string{"6.1.0-56-amd64", "6.1.0-47-amd64"} {
				want := "gnulinux-advanced-" + uuid + ">gnulinux-" + k + "-advanced-" + uuid
				if got, err := g.EntryID(k); got != want || err != nil {
					t.Errorf("EntryID(%s) = %q, %v; want %q", k, got, err, want)
				}
			}
			if got, err := g.EntryID("6.1.0-4"); err == nil {
				t.Errorf("EntryID of a kernel not in the menu = %q, want an error", got)
			}
			flat := grubWith(t, "grub-"+v+"-nosubmenu.cfg")
			want := "gnulinux-6.1.0-47-amd64-advanced-" + uuid
			if got, err := flat.EntryID("6.1.0-47-amd64"); got != want || err != nil {
				t.Errorf("no submenu: EntryID = %q, %v; want %q", got, err, want)
			}
		})
	}
}

// Overridden tells a pin grub.cfg holds from one a later GRUB_DEFAULT
// (zz-local.cfg after zz-dkms-guard.cfg) undid, in real grub.cfg files.
func TestOverriddenRealGrubCfg(t *testing.T) {
	for _, v := range versions {
		for cfg, want := range map[string]string{"pinned": "", "nosubmenu": "", "overridden": "0", "plain": "0"} {
			t.Run(v+"-"+cfg, func(t *testing.T) {
				g := grubWith(t, "grub-"+v+"-"+cfg+".cfg")
				if got := g.Overridden("6.1.0-47-amd64"); got != want {
					t.Errorf("Overridden = %q, want %q", got, want)
				}
			})
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg := "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set default=\"a>b\"\nfi\nset default='saved'\n"
	if got, want := Defaults([]byte(cfg)), []string{"a>b", "saved"}; !slices.Equal(got, want) {
		t.Errorf("Defaults = %q, want %q", got, want)
	}
}

func TestMenuID(t *testing.T) {
	for line, want := range map[string]string{
		"menuentry 'Debian GNU/Linux, with Linux 6.1.0-47-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-47-amd64-advanced-x' {": "gnulinux-6.1.0-47-amd64-advanced-x",
		"submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-x' {":                                       "gnulinux-advanced-x",
		"menuentry 'no id' {": "",
	} {
		if got := menuID(line); got != want {
			t.Errorf("menuID(%q) = %q, want %q", line, got, want)
		}
	}
}

// A snippet name linked to /dev/null is the administrator's: Pin refuses
// and Unpin leaves it.
func TestGrubMasked(t *testing.T) {
	g := grubWith(t, "grub-2.06-13+deb12u2-plain.cfg")
	if err := os.MkdirAll(g.Paths.GrubDefaultsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", g.Paths.GrubPin()); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Pin(t.Context(), "6.1.0-47-amd64", "why", false); !errors.Is(err, ErrMasked) {
		t.Errorf("Pin over a masked snippet: %v, want ErrMasked", err)
	}
	if err := g.Unpin(t.Context(), false); err != nil {
		t.Errorf("Unpin: %v", err)
	}
	if target, err := os.Readlink(g.Paths.GrubPin()); target != "/dev/null" || err != nil {
		t.Errorf("the link became %q, %v", target, err)
	}
	if g.Pinned() {
		t.Error("a masked snippet counts as dkms-guard's pin")
	}
}

// The entry token is kernel-install's: entry-token, else machine-id,
// else os-release's IMAGE_ID or ID.
func TestEntryToken(t *testing.T) {
	p := paths.New(t.TempDir())
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := EntryToken(p); got != "" {
		t.Errorf("nothing: %q", got)
	}
	write(p.OSReleaseFiles()[1], "NAME=\"Debian GNU/Linux\"\nID=debian\n")
	if got := EntryToken(p); got != "debian" {
		t.Errorf("os-release only: %q", got)
	}
	write(p.MachineID(), "3f2a\n")
	if got := EntryToken(p); got != "3f2a" {
		t.Errorf("machine-id: %q", got)
	}
	write(p.KernelEntryToken(), "work\n")
	if got := EntryToken(p); got != "work" {
		t.Errorf("entry-token: %q", got)
	}
}

func TestOurs(t *testing.T) {
	for id, want := range map[string]bool{
		"3f2a-6.1.0-47-amd64.conf":     true,
		"3f2a-6.1.0-47-amd64+3-0.conf": true,
		"9c1d-6.1.0-47-amd64.conf":     false, // another installation
		"3f2a-6.1.0-47-amd64-rt.conf":  false, // another kernel
		"3f2a-6.1.0-47-amd64.conf.bak": false,
		"3f2a-6.1.0-47-amd64+x.conf":   false,
		"debian-6.1.0-47-amd64.conf":   false,
	} {
		if got := ours(id, "3f2a", "6.1.0-47-amd64"); got != want {
			t.Errorf("ours(%q) = %v, want %v", id, got, want)
		}
	}
}
