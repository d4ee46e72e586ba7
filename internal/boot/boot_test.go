package boot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
	loaded    bool            // critmod is loaded now (/proc/modules)
	inTree    bool            // but dkms never installed critmod here: the kernel's own is
	atBoot    bool            // /etc/modules-load.d/critmod.conf loads it
	chroot    bool            // pid 1's root is elsewhere: /proc is the host's
	notCrit   bool            // NOT_CRITICAL_MODULES lists critmod
	keepFor   config.KeepFor  // KEEP_KERNEL_FOR
	waived    *state.Waiver   // boot.json records dkms-guard unpin's waiver
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
		} else if !m.inTree {
			mkdir("var/lib/dkms/critmod/1.0/" + k + "/x86_64/module")
			if err := os.Symlink("1.0/"+k+"/x86_64", filepath.Join(root, "var/lib/dkms/critmod/kernel-"+k+"-x86_64")); err != nil {
				t.Fatal(err)
			}
		}
		view = append(view, v)
	}
	if m.pinned != "" {
		loader.pinned = m.pinned
		touch("etc/default/grub.d/zz-dkms-guard.cfg")
	}
	write := func(name, text string) {
		mkdir(filepath.Dir(name))
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if m.loaded {
		write("proc/modules", "critmod 16384 0 - Live 0x0000000000000000 (OE)\n")
	}
	if m.atBoot {
		write("etc/modules-load.d/critmod.conf", "# the stand-in\ncritmod\n")
	}
	if m.chroot {
		mkdir("proc/1")
		if err := os.Symlink(t.TempDir(), filepath.Join(root, "proc/1/root")); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("etc/apt/apt.conf.d")
	loader.admin = m.admin
	var inInitrd []string
	if m.inInitrd {
		inInitrd = []string{"critmod"}
	}
	s := config.Settings{ManageBoot: m.manage, KeepFor: m.keepFor}
	if m.listed {
		s.Critical = []string{"critmod"}
	}
	if m.notCrit {
		s.NotCritical = []string{"critmod"}
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
	if m.waived != nil {
		st, err := state.Open(p, true, rep)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rec := state.Boot{Schema: state.Schema, Newest: m.waived.Kernel, Next: m.waived.Kernel, Waived: m.waived,
			Lacking: map[string][]state.MV{m.waived.Kernel: m.waived.Lacking}}
		if err := st.Locked(context.Background(), func() error { return st.Save(state.BootFile, &rec) }); err != nil {
			t.Fatal(err)
		}
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
		{"every kernel lacks it", machine{kernels: two, lacking: map[string]bool{k56: true, k47: true}, listed: true, manage: true}, "", "no other kernel has all its boot-critical and in-use DKMS modules"},
		{"only an older kernel lacks it", machine{kernels: three, lacking: map[string]bool{k47: true}, listed: true, manage: true}, "", ""},
		{"pinned, and now complete", machine{kernels: two, listed: true, manage: true, pinned: k47}, "", ""},
		{"pinned, and the pin's kernel is still right", machine{kernels: three, lacking: map[string]bool{k56: true}, listed: true, manage: true, pinned: k47}, k47, "the machine will keep booting 6.1.0-47-amd64"},
		{"pinned, and the newest lacks it, MANAGE_BOOT_ENTRY=no", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true, pinned: k47}, "", "MANAGE_BOOT_ENTRY=no"},

		// Modules in use (issue 15): a W: line, and the two ways out.
		{"newest lacks a loaded module", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true}, k47,
			"W: dkms-guard: 6.1.0-56-amd64 lacks in-use critmod/1.0 (loaded now): the machine will keep booting 6.1.0-47-amd64 (GRUB: GRUB_DEFAULT in /etc/default/grub.d/zz-dkms-guard.cfg); to boot 6.1.0-56-amd64 anyway: dkms-guard unpin, or KEEP_KERNEL_FOR=boot-critical in /etc/default/dkms-guard"},
		{"newest lacks a module loaded at boot", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, atBoot: true}, k47,
			"W: dkms-guard: 6.1.0-56-amd64 lacks in-use critmod/1.0 (loaded at boot by /etc/modules-load.d/critmod.conf): the machine will keep booting"},
		{"loaded and in the initramfs: boot-critical wins", machine{kernels: two, lacking: map[string]bool{k56: true}, initramfs: true, inInitrd: true, manage: true, loaded: true}, k47,
			"E: dkms-guard: 6.1.0-56-amd64 lacks boot-critical critmod/1.0 (in the initramfs of 6.1.0-47-amd64): the machine will keep booting 6.1.0-47-amd64 (GRUB: GRUB_DEFAULT in /etc/default/grub.d/zz-dkms-guard.cfg)"},
		{"loaded, KEEP_KERNEL_FOR=boot-critical", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true, atBoot: true, keepFor: config.KeepBootCritical}, "", ""},
		{"in the initramfs, KEEP_KERNEL_FOR=boot-critical", machine{kernels: two, lacking: map[string]bool{k56: true}, initramfs: true, inInitrd: true, manage: true, keepFor: config.KeepBootCritical}, k47, "E: dkms-guard: 6.1.0-56-amd64 lacks boot-critical critmod/1.0"},
		{"in the initramfs, KEEP_KERNEL_FOR=nothing", machine{kernels: two, lacking: map[string]bool{k56: true}, initramfs: true, inInitrd: true, listed: true, manage: true, loaded: true, keepFor: config.KeepNothing}, "", ""},
		{"pinned, KEEP_KERNEL_FOR=nothing", machine{kernels: two, lacking: map[string]bool{k56: true}, listed: true, manage: true, pinned: k47, keepFor: config.KeepNothing}, "", ""},
		{"loaded, NOT_CRITICAL_MODULES lists it: still in use", machine{kernels: two, lacking: map[string]bool{k56: true}, initramfs: true, inInitrd: true, manage: true, loaded: true, notCrit: true}, k47, "W: dkms-guard: 6.1.0-56-amd64 lacks in-use critmod/1.0 (loaded now)"},
		{"loaded, MANAGE_BOOT_ENTRY=no", machine{kernels: two, lacking: map[string]bool{k56: true}, loaded: true}, "",
			"W: dkms-guard: 6.1.0-56-amd64 lacks in-use critmod/1.0 (loaded now); MANAGE_BOOT_ENTRY=no in /etc/default/dkms-guard: the boot entry was not changed, the next boot uses 6.1.0-56-amd64 without them"},
		{"loaded, but the kernel's own of that name", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true, inTree: true}, "", ""},
		{"loaded in a chroot: the host's", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true, chroot: true}, "", ""},
		{"loaded at boot in a chroot", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, atBoot: true, chroot: true}, k47, "lacks in-use critmod/1.0 (loaded at boot by /etc/modules-load.d/critmod.conf)"},

		// dkms-guard unpin's waiver: it holds while the same kernel lacks
		// no more than it was taken without.
		{"unpinned, the same kernel lacks the same", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true, waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "critmod", Version: "1.0"}}}}, "", ""},
		{"unpinned, a newer version of the module fails too", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true, waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "critmod", Version: "0.9"}, {Module: "other", Version: "1"}}}}, "", ""},
		{"unpinned, boot-critical too", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, listed: true, waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "critmod", Version: "1.0"}}}}, "", ""},
		{"unpinned, then a newer kernel lacks it", machine{kernels: three[:2], lacking: map[string]bool{k56: true}, manage: true, loaded: true, waived: &state.Waiver{Kernel: k47, Lacking: []state.MV{{Module: "critmod", Version: "1.0"}}}}, k47, "W: dkms-guard: 6.1.0-56-amd64 lacks in-use critmod/1.0"},
		{"unpinned without one module, now another lacks", machine{kernels: two, lacking: map[string]bool{k56: true}, manage: true, loaded: true, waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "other", Version: "1"}}}}, k47, "W: dkms-guard: 6.1.0-56-amd64 lacks in-use critmod/1.0"},
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
			if len(loader.calls) != calls || strings.Contains(out.String(), "E: ") || strings.Contains(out.String(), "W: ") {
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

// dkms-guard unpin sticks: the next decisions leave the newest kernel the
// default while it lacks no more than it was taken without, and a newer
// kernel ends that.
func TestUnpinSticks(t *testing.T) {
	const k47, k56, k60 = "6.1.0-47-amd64", "6.1.0-56-amd64", "6.1.0-60-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, manage: true, loaded: true}
	loader := &fakeLoader{}
	k, view, out := m.keeper(t, loader)
	ctx := context.Background()
	k.Settle(ctx, view, "")
	if loader.pinned != k47 {
		t.Fatalf("not pinned to %s: %v\n%s", k47, loader.calls, out)
	}
	out.Reset()
	if err := k.Unpin(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "N: dkms-guard: the next boot uses 6.1.0-56-amd64 without critmod/1.0: dkms-guard keeps no older kernel the default for them until a newer kernel is installed or they build") {
		t.Errorf("unpin said:\n%s", out)
	}

	// The next apt run: no pin, and the notice says why.
	out.Reset()
	lines := k.Settle(ctx, view, "")
	if loader.pinned != "" || strings.Contains(out.String(), "W: ") {
		t.Errorf("pinned %q after unpin, said:\n%s", loader.pinned, out)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "The next boot uses kernel 6.1.0-56-amd64 although 6.1.0-56-amd64 lacks in-use critmod/1.0 (loaded now): the administrator took it") {
		t.Errorf("next boot lines %q", lines)
	}

	// A newer kernel that lacks it too is pinned away from again.
	touchIn(t, k.Paths, "boot/vmlinuz-"+k60)
	view = append([]results.Kernel{{Kernel: k60, Bootable: true, Missing: []results.Missing{{Module: "critmod", Version: "1.0", Failed: true}}}}, view...)
	out.Reset()
	k.Settle(ctx, view, "")
	if loader.pinned != k47 || !strings.Contains(out.String(), "W: dkms-guard: 6.1.0-60-amd64 lacks in-use critmod/1.0") {
		t.Errorf("newer kernel: pinned %q, said:\n%s", loader.pinned, out)
	}
}

// The waiver ends when the module arrives: a later failure on the same
// kernel pins again.
func TestWaiverEndsWhenModuleArrives(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, manage: true, loaded: true,
		waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "critmod", Version: "1.0"}}}}
	loader := &fakeLoader{}
	k, view, out := m.keeper(t, loader)
	ctx := context.Background()
	missing := view[0].Missing
	view[0].Missing = nil
	k.Settle(ctx, view, "")
	if paths.Exists(filepath.Join(k.Paths.StateDir(), state.BootFile)) {
		t.Error("boot.json kept after the module arrived")
	}
	view[0].Missing = missing
	k.Settle(ctx, view, "")
	if loader.pinned != k47 {
		t.Errorf("not pinned again after the waiver ended: %v\n%s", loader.calls, out)
	}
}

// touchIn creates an empty file below p's root.
func touchIn(t *testing.T, p paths.Paths, name string) {
	t.Helper()
	full := filepath.Join(p.Root, name)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// While a pin stands, apt autoremove must not remove its kernel: the
// apt.conf.d file names its packages, and goes with the pin (settled,
// unpinned, the lacking kernel removed).
func TestPinnedKernelKeptFromAutoremove(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	ctx := context.Background()
	want := `// Written by dkms-guard while it keeps 6.1.0-47-amd64 the default boot entry, so that
// apt autoremove does not remove the kernel the next boot uses. dkms-guard
// removes this file with the pin (dkms-guard unpin, or the kernel's modules
// building). Do not edit it.
APT::NeverAutoRemove
{
   "^linux-.*-6\.1\.0-47-amd64$";
   "^.*-modules-6\.1\.0-47-amd64$";
   "^.*-kernel-6\.1\.0-47-amd64$";
};
`
	for _, end := range []string{"settled", "unpin", "kernel removed"} {
		t.Run(end, func(t *testing.T) {
			m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, listed: true, manage: true}
			loader := &fakeLoader{}
			k, view, out := m.keeper(t, loader)
			k.Settle(ctx, view, "")
			got, err := os.ReadFile(k.Paths.PinnedKernelAptConf())
			if err != nil || string(got) != want {
				t.Fatalf("pinned: %v\n%s\nwant\n%s\n%s", err, got, want, out)
			}
			switch end {
			case "settled":
				view[0].Missing = nil
				k.Settle(ctx, view, "")
			case "unpin":
				if err := k.Unpin(ctx, true); err != nil {
					t.Fatal(err)
				}
			case "kernel removed":
				k.Settle(ctx, view, k56)
			}
			if loader.pinned != "" || paths.Exists(k.Paths.PinnedKernelAptConf()) {
				t.Errorf("pinned %q, apt.conf.d file there: %v", loader.pinned, paths.Exists(k.Paths.PinnedKernelAptConf()))
			}
		})
	}
}

// A protection from autoremove left without its pin (boot.json lost) is
// removed by the next decision, even with nothing missing.
func TestLeftoverAutoremoveFileRemoved(t *testing.T) {
	m := machine{kernels: []string{"6.1.0-56-amd64", "6.1.0-47-amd64"}, manage: true}
	k, view, out := m.keeper(t, &fakeLoader{})
	if err := os.WriteFile(k.Paths.PinnedKernelAptConf(), neverAutoRemove("6.1.0-47-amd64"), 0o644); err != nil {
		t.Fatal(err)
	}
	k.Settle(context.Background(), view, "")
	if paths.Exists(k.Paths.PinnedKernelAptConf()) {
		t.Errorf("left behind; said:\n%s", out)
	}
}

// unpin waives what the newest kernel lacked at the last decision; a
// boot.json from before Newest was recorded names it only when one kernel
// lacked modules.
func TestWaiverOf(t *testing.T) {
	mv := []state.MV{{Module: "nvidia", Version: "535"}}
	for name, tt := range map[string]struct {
		rec  state.Boot
		want *state.Waiver
	}{
		"recorded":          {state.Boot{Newest: "b", Lacking: map[string][]state.MV{"b": mv, "a": mv}}, &state.Waiver{Kernel: "b", Lacking: mv}},
		"old file, one":     {state.Boot{Lacking: map[string][]state.MV{"b": mv}}, &state.Waiver{Kernel: "b", Lacking: mv}},
		"old file, two":     {state.Boot{Lacking: map[string][]state.MV{"b": mv, "a": mv}}, nil},
		"newest lacks none": {state.Boot{Newest: "c", Lacking: map[string][]state.MV{"b": mv}}, nil},
		// unpin again while a waiver holds keeps it, and adds to it.
		"held, not needed now": {state.Boot{Newest: "b", Waived: &state.Waiver{Kernel: "b", Lacking: mv}}, &state.Waiver{Kernel: "b", Lacking: mv}},
		"held, and another":    {state.Boot{Newest: "b", Lacking: map[string][]state.MV{"b": {{Module: "vpn", Version: "1"}}}, Waived: &state.Waiver{Kernel: "b", Lacking: mv}}, &state.Waiver{Kernel: "b", Lacking: append(slices.Clone(mv), state.MV{Module: "vpn", Version: "1"})}},
		"an older kernel's":    {state.Boot{Newest: "c", Waived: &state.Waiver{Kernel: "b", Lacking: mv}}, nil},
	} {
		if got := waiverOf(tt.rec); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", name, got, tt.want)
		}
	}
}

// The waiver outlives a decision that does not need the module (it is
// not loaded for a while: the machine booted the kernel taken, which
// lacks it, or it was unloaded; or KEEP_KERNEL_FOR=nothing for a while):
// while that kernel is still the newest and still lacks the module, its
// need coming back pins nothing.
func TestWaiverOutlivesAPauseInUse(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	for name, pause := range map[string]func(k *Keeper, s *config.Settings){
		"unloaded": func(k *Keeper, _ *config.Settings) {
			if err := os.Rename(k.Paths.ProcModules(), k.Paths.ProcModules()+".away"); err != nil {
				t.Fatal(err)
			}
		},
		"KEEP_KERNEL_FOR=nothing": func(_ *Keeper, s *config.Settings) { s.KeepFor = config.KeepNothing },
	} {
		t.Run(name, func(t *testing.T) {
			m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, manage: true, loaded: true}
			loader := &fakeLoader{}
			k, view, out := m.keeper(t, loader)
			s := k.Settings()
			k.Settings = func() config.Settings { return s }
			ctx := context.Background()
			k.Settle(ctx, view, "")
			if err := k.Unpin(ctx, false); err != nil {
				t.Fatal(err)
			}
			pause(k, &s)
			k.Settle(ctx, view, "")
			// The need comes back: the module loaded again, the setting back.
			os.Rename(k.Paths.ProcModules()+".away", k.Paths.ProcModules())
			s.KeepFor = config.KeepInUse
			out.Reset()
			lines := k.Settle(ctx, view, "")
			if loader.pinned != "" || len(lines) != 1 || !strings.Contains(lines[0], "the administrator took it") {
				t.Errorf("pinned %q, lines %q after a pause in use; said:\n%s", loader.pinned, lines, out)
			}
		})
	}
}

// A waived kernel that lacks something else too is pinned away from; once
// that arrives, the waiver holds again: the pin goes, and an N: line says
// why.
func TestWaiverAgainAfterOtherModuleArrives(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, manage: true, loaded: true,
		waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "critmod", Version: "1.0"}}}}
	loader := &fakeLoader{}
	k, view, out := m.keeper(t, loader)
	ctx := context.Background()
	// vpn, loaded at boot, fails on k56 too.
	touchIn(t, k.Paths, "var/lib/dkms/vpn/1.0/"+k47+"/x86_64/module/vpn.ko")
	if err := os.Symlink("/usr/src/vpn-1.0", filepath.Join(k.Paths.DKMSTree(), "vpn/1.0/source")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("1.0/"+k47+"/x86_64", filepath.Join(k.Paths.DKMSTree(), "vpn/kernel-"+k47+"-x86_64")); err != nil {
		t.Fatal(err)
	}
	touchIn(t, k.Paths, "usr/src/vpn-1.0/dkms.conf")
	touchIn(t, k.Paths, "etc/modules-load.d/vpn.conf")
	if err := os.WriteFile(filepath.Join(k.Paths.Root, "etc/modules-load.d/vpn.conf"), []byte("vpn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	critmod := view[0].Missing
	view[0].Missing = append(slices.Clone(critmod), results.Missing{Module: "vpn", Version: "1.0", Failed: true})
	k.Settle(ctx, view, "")
	if loader.pinned != k47 {
		t.Fatalf("not pinned for vpn: %v\n%s", loader.calls, out)
	}
	out.Reset()
	view[0].Missing = critmod
	lines := k.Settle(ctx, view, "")
	if loader.pinned != "" || len(lines) != 1 || !strings.Contains(lines[0], "the administrator took it") {
		t.Errorf("vpn arrived: pinned %q, lines %q\n%s", loader.pinned, lines, out)
	}
	if !strings.Contains(out.String(), "N: dkms-guard: the boot entry is no longer pinned to 6.1.0-47-amd64: the next boot uses 6.1.0-56-amd64, which the administrator took without critmod/1.0 (dkms-guard unpin)\n") {
		t.Errorf("the pin went silently:\n%s", out)
	}
}

// A kernel taken with dkms-guard unpin although it lacks a boot-critical
// module: the lines the notice and summary show say it will likely not
// boot, as they say it for a pin that could not be made.
func TestWaivedBootCriticalSaysLikelyNotBoot(t *testing.T) {
	const k47, k56 = "6.1.0-47-amd64", "6.1.0-56-amd64"
	m := machine{kernels: []string{k56, k47}, lacking: map[string]bool{k56: true}, manage: true, listed: true,
		waived: &state.Waiver{Kernel: k56, Lacking: []state.MV{{Module: "critmod", Version: "1.0"}}}}
	k, view, out := m.keeper(t, &fakeLoader{})
	lines := k.Settle(context.Background(), view, "")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "the administrator took it (dkms-guard unpin): it will likely not boot.") {
		t.Errorf("lines %q\n%s", lines, out)
	}
}
