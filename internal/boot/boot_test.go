package boot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/bootloader"
	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// fakeLoader is a bootloader that records what dkms-guard made its
// default; like GRUB, it keeps its pin in the snippet file.
type fakeLoader struct {
	snippet string
	admin   string
	pinned  string // "" for the bootloader's own default, the newest kernel
	// other is the default entry the generated configuration holds
	// instead of the pin ("" when it holds the pin).
	other string
	calls []string
}

func (l *fakeLoader) Name() string         { return "GRUB" }
func (l *fakeLoader) AdminDefault() string { return l.admin }
func (l *fakeLoader) Pinned() bool         { return l.pinned != "" }
func (l *fakeLoader) Overridden(string) string {
	return l.other
}

func (l *fakeLoader) Pin(_ context.Context, kernel, _ string, _ bool) (string, error) {
	l.calls = append(l.calls, "pin "+kernel)
	l.pinned = kernel
	if err := os.MkdirAll(filepath.Dir(l.snippet), 0o755); err != nil {
		return "", err
	}
	return "/etc/default/grub.d/zz-dkms-guard.cfg", os.WriteFile(l.snippet, nil, 0o644)
}

func (l *fakeLoader) Unpin(context.Context, bool) error {
	l.calls = append(l.calls, "unpin")
	l.pinned = ""
	return os.Remove(l.snippet)
}

// fakeLister lists an initramfs holding the kernel modules in mods.
type fakeLister struct{ mods []string }

func (f fakeLister) List(_ context.Context, image string) ([]string, error) {
	var out []string
	for _, m := range f.mods {
		out = append(out, "usr/lib/modules/x/updates/dkms/"+m+".ko")
	}
	return out, nil
}

// machine is one row's machine: kernels newest first, as GRUB orders them.
type machine struct {
	kernels   []string
	lacking   map[string]bool // kernels whose critmod build failed
	initramfs bool            // the kernels have an initramfs image
	inInitrd  bool            // critmod is in the running kernel's initramfs
	listed    bool            // CRITICAL_MODULES lists critmod
	manage    bool            // MANAGE_BOOT_ENTRY
	noLoader  bool            // neither GRUB (no grub.cfg) nor systemd-boot
	admin     string          // the administrator's GRUB_DEFAULT
	pinned    string          // the kernel a previous decision pinned
}

// keeper builds a Keeper over a fake root for m, and the view of it.
func (m machine) keeper(t *testing.T, loader *fakeLoader) (*Keeper, []results.Kernel, *strings.Builder) {
	t.Helper()
	root := t.TempDir()
	p := paths.New(root)
	loader.snippet = p.GrubPin()
	mkdir := func(name string) {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(name string) {
		mkdir(filepath.Dir(name))
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("usr/src/critmod-1.0")
	mkdir("var/lib/dkms/critmod/1.0")
	if err := os.Symlink("/usr/src/critmod-1.0", filepath.Join(root, "var/lib/dkms/critmod/1.0/source")); err != nil {
		t.Fatal(err)
	}
	var view []results.Kernel
	for _, k := range m.kernels {
		touch("boot/vmlinuz-" + k)
		if m.initramfs {
			touch("boot/initrd.img-" + k)
		}
		v := results.Kernel{Kernel: k, Bootable: true}
		if m.lacking[k] {
			v.Missing = []results.Missing{{Module: "critmod", Version: "1.0", Failed: true}}
		}
		view = append(view, v)
	}
	if m.pinned != "" {
		loader.pinned = m.pinned
		touch("etc/default/grub.d/zz-dkms-guard.cfg")
	}
	loader.admin = m.admin
	var inInitrd []string
	if m.inInitrd {
		inInitrd = []string{"critmod"}
	}
	s := config.Settings{ManageBoot: m.manage}
	if m.listed {
		s.Critical = []string{"critmod"}
	}
	out := &strings.Builder{}
	rep := report.New(out)
	k := &Keeper{
		Paths:   p,
		Finder:  critical.Finder{Paths: p, Initramfs: fakeLister{inInitrd}, Arch: "x86_64", Report: rep},
		Release: m.kernels[len(m.kernels)-1],
		Detect: func(context.Context) bootloader.Loader {
			if m.noLoader {
				return nil
			}
			return loader
		},
		Report:   rep,
		Log:      io.Discard,
		Now:      func() time.Time { return time.Unix(0, 0) },
		Settings: func() config.Settings { return s },
	}
	return k, view, out
}

// Which kernel becomes the default boot entry, for every combination
// that matters. A further class of needed module (issue 15) adds rows
// here, not code to choose.
func TestDecisionTable(t *testing.T) {
	const k41, k47, k56 = "6.1.0-41-amd64", "6.1.0-47-amd64", "6.1.0-56-amd64"
	two := []string{k56, k47}
	three := []string{k56, k47, k41}
	tests := []struct {
		name string
		m    machine
		// want is the kernel pinned afterwards, "" for the bootloader's
		// own default (the newest kernel, or the administrator's choice).
		want string
		// say is a piece of the one E: or W: line, "" for silence.
		say string
	}{
		{"newest complete", machine{kernels: two, initramfs: true, inInitrd: true, manage: true}, "", ""},
		{"newest lacks a module in the initramfs", machine{kernels: two, lacking: map[string]bool{k56: true}, initramfs: true, inInitrd: true, manage: true}, k47, "E: dkms-guard: 6.1.0-56-amd64 lacks boot-critical critmod/1.0 (in the initramfs of 6.1.0-47-amd64)"},
		{"newest lacks a module no one needs", machine{kernels: two, lacking: map[string]bool{k56: true}, initramfs: true, manage: true}, "", ""},
		{"no initramfs, module not listed", machine{kernels: two, lacking: map[string]bool{k56: true}, inInitrd: true, manage: true}, "", ""},
		{"no initramfs, CRITICAL_MODULES lists it", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true, manage: true}, k47, "listed in CRITICAL_MODULES"},
		{"the administrator's GRUB_DEFAULT", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true, manage: true, admin: `GRUB_DEFAULT="saved"`}, "", "W: dkms-guard: 6.1.0-56-amd64 lacks boot-critical critmod/1.0 (listed in CRITICAL_MODULES of /etc/default/dkms-guard); the default boot entry is the administrator's"},
		{"no grub.cfg nor systemd-boot", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true, manage: true, noLoader: true}, "", "no GRUB or systemd-boot was found"},
		{"MANAGE_BOOT_ENTRY=no", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true}, "", "MANAGE_BOOT_ENTRY=no"},
		{"several kernels lack it", machine{kernels: three, lacking: map[string]bool{k56: true, k47: true}, listed: true, manage: true}, k41, "the machine will keep booting 6.1.0-41-amd64"},
		{"every kernel lacks it", machine{kernels: two, lacking: map[string]bool{k56: true, k47: true}, listed: true, manage: true}, "", "no other kernel has all its boot-critical DKMS modules"},
		{"only an older kernel lacks it", machine{kernels: three, lacking: map[string]bool{k47: true}, listed: true, manage: true}, "", ""},
		{"pinned, and now complete", machine{kernels: two, listed: true, manage: true, pinned: k47}, "", ""},
		{"pinned, and the pin's kernel is still right", machine{kernels: three, lacking: map[string]bool{k56: true}, listed: true, manage: true, pinned: k47}, k47, "the machine will keep booting 6.1.0-47-amd64"},
		{"pinned, and the newest lacks it, MANAGE_BOOT_ENTRY=no", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true, pinned: k47}, "", "MANAGE_BOOT_ENTRY=no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loader := &fakeLoader{}
			k, view, out := tt.m.keeper(t, loader)
			k.Settle(context.Background(), view, "")
			if loader.pinned != tt.want {
				t.Errorf("default entry pinned to %q, want %q (calls %v)", loader.pinned, tt.want, loader.calls)
			}
			var said []string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
					said = append(said, l)
				}
			}
			switch {
			case tt.say == "" && len(said) > 0:
				t.Errorf("said %q, want silence", said)
			case tt.say != "" && (len(said) != 1 || !strings.Contains(said[0], tt.say)):
				t.Errorf("said %q, want one line with %q", said, tt.say)
			}

			// Deciding again with nothing changed changes nothing and says nothing.
			calls := len(loader.calls)
			out.Reset()
			k.Settle(context.Background(), view, "")
			if len(loader.calls) != calls || strings.Contains(out.String(), "E: ") {
				t.Errorf("second decision: calls %v, said %q", loader.calls[calls:], out.String())
			}
		})
	}
}

// choose knows nothing of where a need comes from: any class keeps a
// kernel lacking the module off the default entry.
func TestChooseTakesAnyNeed(t *testing.T) {
	bootable := []results.Kernel{
		{Kernel: "c", Missing: []results.Missing{{Module: "zfs", Version: "2"}, {Module: "nvidia", Version: "5"}}},
		{Kernel: "b", Missing: []results.Missing{{Module: "nvidia", Version: "5"}}},
		{Kernel: "a"},
	}
	needs := Needs{}
	needs.Add("zfs", BootCritical, "provides the zfs file system of /")
	lacking, keep := choose(bootable, needs)
	if keep != "b" || !reflect.DeepEqual(lacking, map[string][]state.MV{"c": {{Module: "zfs", Version: "2"}}}) {
		t.Errorf("zfs needed: keep %q, lacking %v", keep, lacking)
	}
	needs.Add("nvidia", Class(2), "loaded now") // a class to come (issue 15)
	if _, keep := choose(bootable, needs); keep != "a" {
		t.Errorf("zfs and nvidia needed: keep %q, want a", keep)
	}
}

// A pin rewritten for a new reason, with grub.cfg left as it is (the same
// entry is pinned), still checks what grub.cfg holds: the E: line must not
// claim the pin takes while a later GRUB_DEFAULT overrides it.
func TestRepinChecksGrubCfg(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, listed: true, manage: true}
	loader := &fakeLoader{other: "0"}
	k, view, out := m.keeper(t, loader)
	k.Settle(context.Background(), view, "")
	if !strings.Contains(out.String(), "sets default=0") {
		t.Fatalf("first decision did not say grub.cfg overrides the pin:\n%s", out)
	}

	// critmod 1.1 now lacks instead of 1.0: the same kernel is pinned for a new reason.
	view[0].Missing[0].Version = "1.1"
	out.Reset()
	lines := k.Settle(context.Background(), view, "")
	if strings.Contains(out.String(), "will keep booting") || !strings.Contains(out.String(), "sets default=0") {
		t.Errorf("re-pin with grub.cfg still overridden said:\n%s", out)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "administrator's default entry") {
		t.Errorf("next boot lines %q, want the administrator's default entry", lines)
	}
}

// failingInitramfs cannot rebuild an initramfs (a full /boot).
type failingInitramfs struct{ calls *[]string }

func (f failingInitramfs) Update(_ context.Context, kernel string, _ io.Writer) error {
	*f.calls = append(*f.calls, "update-initramfs "+kernel)
	return errors.New("update-initramfs: exit status 1")
}

// A kernel whose module now builds keeps the pin off it while its
// initramfs cannot be rebuilt: that initramfs still lacks the module, and
// booting it would fail as the pin was there to prevent.
func TestInitramfsRebuildFailedKeepsPin(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, initramfs: true, listed: true, manage: true}
	loader := &fakeLoader{}
	k, view, out := m.keeper(t, loader)
	var calls []string
	k.Initramfs = failingInitramfs{&calls}
	k.Settle(context.Background(), view, "")
	if loader.pinned != k47 {
		t.Fatalf("not pinned to %s: %v\n%s", k47, loader.calls, out)
	}

	// critmod now builds for 6.1.0-56, but its initramfs cannot be rebuilt.
	view[0].Missing = nil
	out.Reset()
	k.Settle(context.Background(), view, "")
	if len(calls) != 1 {
		t.Errorf("initramfs rebuilds %v, want one of %s", calls, k56)
	}
	if loader.pinned != k47 {
		t.Errorf("pin removed although the initramfs of %s was not rebuilt: %v\n%s", k56, loader.calls, out)
	}

	// The next decision tries again.
	k.Settle(context.Background(), view, "")
	if len(calls) != 2 || loader.pinned != k47 {
		t.Errorf("second try: rebuilds %v, pinned %q", calls, loader.pinned)
	}
}

// recordingInitramfs rebuilds an initramfs, recording which.
type recordingInitramfs struct{ calls *[]string }

func (f recordingInitramfs) Update(_ context.Context, kernel string, _ io.Writer) error {
	*f.calls = append(*f.calls, "update-initramfs "+kernel)
	return nil
}

// The kernel being removed is not a kernel that "now has its modules":
// its initramfs is not rebuilt in its own prerm.
func TestRemovedKernelInitramfsNotRebuilt(t *testing.T) {
	const k41, k47, k56 = "6.1.0-41-amd64", "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47, k41}, lacking: map[string]bool{k56: true}, initramfs: true, listed: true, manage: true}
	loader := &fakeLoader{}
	k, view, out := m.keeper(t, loader)
	var calls []string
	k.Initramfs = recordingInitramfs{&calls}
	k.Settle(context.Background(), view, "")
	if loader.pinned != k47 {
		t.Fatalf("not pinned to %s: %v\n%s", k47, loader.calls, out)
	}
	k.Settle(context.Background(), view, k56) // kernel-prerm of 6.1.0-56
	if len(calls) != 0 {
		t.Errorf("initramfs rebuilds %v while %s is removed, want none", calls, k56)
	}
	if loader.pinned != "" {
		t.Errorf("pinned %q with the lacking kernel removed, want the bootloader's default", loader.pinned)
	}
}

// A state directory dkms-guard refuses to use (a symlink planted there)
// does not stop the decision: the pin is made without boot.json, as with
// a read-only /var, since the bootloader's files tell what is pinned.
func TestUnsafeStateDirStillPins(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, listed: true, manage: true}
	loader := &fakeLoader{}
	k, view, out := m.keeper(t, loader)
	elsewhere := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(k.Paths.StateDir()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, k.Paths.StateDir()); err != nil {
		t.Fatal(err)
	}
	k.Settle(context.Background(), view, "")
	if loader.pinned != k47 {
		t.Errorf("pinned %q with an unsafe state directory, want %s:\n%s", loader.pinned, k47, out)
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("wrote through the symlinked state directory: %v", ents)
	}
}

// A pin removed while the newest kernel still lacks a module (the
// administrator turned MANAGE_BOOT_ENTRY off, or every kernel lacks it)
// does not claim that kernel has them all.
func TestUnpinWhileLackingSaysNoMore(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	for name, m := range map[string]machine{
		"MANAGE_BOOT_ENTRY=no": {kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, listed: true, pinned: k47},
		"every kernel lacks":   {kernels: []string{k56, k47}, lacking: map[string]bool{k56: true, k47: true}, listed: true, manage: true, pinned: k47},
	} {
		t.Run(name, func(t *testing.T) {
			loader := &fakeLoader{}
			k, view, out := m.keeper(t, loader)
			k.Settle(context.Background(), view, "")
			if loader.pinned != "" {
				t.Fatalf("still pinned to %q", loader.pinned)
			}
			if strings.Contains(out.String(), "which has all its boot-critical DKMS modules") {
				t.Errorf("claims %s has its modules:\n%s", k56, out)
			}
			if !strings.Contains(out.String(), "E: dkms-guard: 6.1.0-56-amd64 lacks boot-critical critmod/1.0") ||
				!strings.Contains(out.String(), "the boot pin in /etc/default/grub.d/zz-dkms-guard.cfg (not recorded in boot.json) was removed") {
				t.Errorf("does not say in its E: line that the pin went:\n%s", out)
			}
		})
	}
}

// unpin with a recorded pin and no bootloader tools found (update-grub or
// bootctl gone) removes nothing and says so; the record is kept for the
// next decision.
func TestUnpinWithoutLoaderKeepsRecord(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, listed: true, manage: true, initramfs: true}
	loader := &fakeLoader{}
	k, view, _ := m.keeper(t, loader)
	k.Settle(context.Background(), view, "")
	if loader.pinned != k47 {
		t.Fatalf("pinned %q, want %s", loader.pinned, k47)
	}
	k.Detect = func(context.Context) bootloader.Loader { return nil }
	err := k.Unpin(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "nothing was removed") {
		t.Errorf("unpin without a bootloader: %v", err)
	}
	if !paths.Exists(filepath.Join(k.Paths.StateDir(), state.BootFile)) {
		t.Error("boot.json was removed although the pin stays")
	}
}
