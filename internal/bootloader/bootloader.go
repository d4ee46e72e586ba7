// Package bootloader sets and clears the default boot entry: for GRUB a
// snippet in /etc/default/grub.d that sets GRUB_DEFAULT to a kernel's menu
// entry (as Proxmox's kernel pin does), for systemd-boot `bootctl
// set-default`. It never overrides an administrator's own choice of
// default entry: Loader.AdminDefault reports it and the caller only warns.
package bootloader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// Loader sets the default boot entry of one bootloader.
type Loader interface {
	// Name is the bootloader's name for messages.
	Name() string
	// AdminDefault describes the administrator's own choice of default
	// entry, "" when there is none.
	AdminDefault() string
	// Pin makes kernel the default entry, saying why in what it writes,
	// and returns where it did so. regenerate runs the bootloader's
	// configuration generator; inside a kernel's postinst that is left to
	// zz-update-grub, which runs after dkms-guard's hook.
	Pin(ctx context.Context, kernel, why string, regenerate bool) (string, error)
	// Unpin removes the pin; see Pin for regenerate.
	Unpin(ctx context.Context, regenerate bool) error
	// Pinned tells whether a pin of dkms-guard's is on disk (or in the
	// firmware), whatever boot.json says: that is the truth to reconcile
	// with when boot.json is lost.
	Pinned() bool
	// Overridden is the default entry the generated configuration holds
	// when it is not kernel's, as Pin left it; "" when it is kernel's or
	// cannot be told.
	Overridden(kernel string) string
}

// Describe says where a pin is, from a loader's name and the where its
// Pin returned (a file, an entry id), for messages: names from boot.json
// are quoted here, where they are printed.
func Describe(loader, where string) string {
	switch loader {
	case "GRUB":
		return "GRUB_DEFAULT in " + report.Name(where)
	case "systemd-boot":
		return "the EFI variable LoaderEntryDefault (bootctl set-default " + report.Name(where) + ")"
	}
	return report.Name(loader) + " " + report.Name(where)
}

// genTimeout bounds update-grub and bootctl.
const genTimeout = 5 * time.Minute

// Detect finds the machine's bootloader, nil when it is neither GRUB (a
// generated /boot/grub/grub.cfg and update-grub) nor systemd-boot.
// Output of the programs it runs goes to out.
func Detect(ctx context.Context, p paths.Paths, out io.Writer) Loader {
	if paths.Exists(p.GrubConfig()) {
		if _, err := exec.LookPath("update-grub"); err == nil {
			return Grub{Paths: p, Out: out}
		}
	}
	if _, err := exec.LookPath("bootctl"); err == nil {
		if (program.Cmd{Name: "bootctl", Args: []string{"is-installed"}, Timeout: genTimeout}).Run(ctx) == nil {
			return SystemdBoot{Paths: p, Out: out}
		}
	}
	return nil
}

// Grub pins with /etc/default/grub.d/zz-dkms-guard.cfg.
type Grub struct {
	Paths paths.Paths
	Out   io.Writer
}

// Name is "GRUB".
func (Grub) Name() string { return "GRUB" }

// AdminDefault reads GRUB_DEFAULT as grub-mkconfig would (SourceGrubDefaults),
// leaving out dkms-guard's own snippet. 0 (Debian's default) or nothing is
// no choice; a value dkms-guard cannot read for certain counts as one.
func (g Grub) AdminDefault() string {
	vars := shellconf.New()
	setBy := ""
	err := SourceGrubDefaults(g.Paths, func(f string, v *shellconf.Vars) {
		if f == g.Paths.GrubPin() {
			return
		}
		before := vars.Get("GRUB_DEFAULT")
		vars.Merge(v)
		if vars.Get("GRUB_DEFAULT") != before || !v.Known("GRUB_DEFAULT") {
			setBy = g.Paths.Rel(f)
		}
	})
	if err != nil {
		return err.Error()
	}
	switch val := vars.Get("GRUB_DEFAULT"); {
	case !vars.Known("GRUB_DEFAULT"):
		return fmt.Sprintf("GRUB_DEFAULT is set in a way dkms-guard cannot read (%s %s)", setBy, vars.Why("GRUB_DEFAULT"))
	case val != "" && val != "0":
		return fmt.Sprintf("GRUB_DEFAULT=%q in %s", val, setBy)
	}
	return ""
}

// SourceGrubDefaults reads GRUB's settings in the order grub-mkconfig
// sources them: /etc/default/grub, then /etc/default/grub.d/*.cfg by name.
// Each file goes to fn with what it sets; a missing one, or one linked to
// /dev/null, sets nothing and is left out. The first file that cannot be
// read or parsed ends the reading with an error saying so.
func SourceGrubDefaults(p paths.Paths, fn func(name string, v *shellconf.Vars)) error {
	more, _ := filepath.Glob(filepath.Join(p.GrubDefaultsDir(), "*.cfg"))
	sort.Strings(more)
	for _, f := range append([]string{p.GrubDefaults()}, more...) {
		data, err := file.ReadRegular(f, 1<<20)
		if errors.Is(err, fs.ErrNotExist) || masked(f) {
			continue // a file linked to /dev/null sets nothing
		}
		if err != nil {
			return fmt.Errorf("%s cannot be read (%v)", p.Rel(f), err)
		}
		v, err := shellconf.Parse(bytes.NewReader(data), f)
		if err != nil {
			return fmt.Errorf("%s cannot be parsed (%v)", p.Rel(f), err)
		}
		fn(f, v)
	}
	return nil
}

// masked tells whether name is a link to /dev/null.
func masked(name string) bool {
	target, err := os.Readlink(name)
	return err == nil && target == "/dev/null"
}

// EntryID finds kernel's menu entry in the generated grub.cfg, as
// GRUB_DEFAULT names it: "SUBMENU-ID>ENTRY-ID" for an entry under
// "Advanced options", the entry's id alone at the top level. The recovery
// entries are left out.
func (g Grub) EntryID(kernel string) (string, error) {
	data, err := file.ReadRegular(g.Paths.GrubConfig(), 16<<20)
	if err != nil {
		return "", err
	}
	want := "gnulinux-" + kernel + "-advanced-"
	submenu := ""
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSuffix(line, "\n")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "submenu "):
			submenu = menuID(trimmed)
		case line == "}":
			submenu = ""
		case strings.HasPrefix(trimmed, "menuentry "):
			id := menuID(trimmed)
			if !strings.HasPrefix(id, want) {
				continue
			}
			if submenu != "" && strings.HasPrefix(line, "\t") {
				return submenu + ">" + id, nil
			}
			return id, nil
		}
	}
	return "", fmt.Errorf("no menu entry for %s in %s", kernel, g.Paths.Rel(g.Paths.GrubConfig()))
}

// menuID is the id after $menuentry_id_option on a menuentry or submenu line.
func menuID(line string) string {
	_, rest, ok := strings.Cut(line, "$menuentry_id_option '")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "'")
	return id
}

// ErrMasked means the administrator linked dkms-guard's snippet to
// /dev/null (or put anything but a regular file there): the way to opt
// a grub.d file name out, as with systemd units. It is never replaced
// nor removed, and no pin is made.
var ErrMasked = errors.New("masked by the administrator: dkms-guard neither replaces nor removes it")

// snippet tells what is at the snippet's name: nothing, dkms-guard's own
// regular file, or something else (ErrMasked). Lstat: a link is never
// followed, nor replaced by a rename over it.
func (g Grub) snippet() (bool, error) {
	fi, err := os.Lstat(g.Paths.GrubPin())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("%s: %w", g.Paths.Rel(g.Paths.GrubPin()), ErrMasked)
	}
	return true, nil
}

// Pinned tells whether dkms-guard's snippet is in place.
func (g Grub) Pinned() bool { return GrubPinned(g.Paths) }

// GrubPinned tells whether dkms-guard's GRUB snippet is in place: one
// lstat, cheap enough for every apt run.
func GrubPinned(p paths.Paths) bool {
	ok, _ := Grub{Paths: p}.snippet()
	return ok
}

// Pin writes the snippet (atomically, 0644) and regenerates grub.cfg.
func (g Grub) Pin(ctx context.Context, kernel, why string, regenerate bool) (string, error) {
	if _, err := g.snippet(); err != nil {
		return "", err
	}
	id, err := g.EntryID(kernel)
	if err != nil {
		return "", err
	}
	// An administrator's GRUB_DEFAULT set after this file was written must
	// win: dkms-guard reads it at every decision and then removes this file.
	text := fmt.Sprintf(`# Written by dkms-guard: %s
# so the default boot entry stays on %s. dkms-guard removes this file once
# the newer kernels have their boot-critical and in-use modules;
# "dkms-guard unpin" removes it now. Do not edit it: set GRUB_DEFAULT in /etc/default/grub
# (or another file in /etc/default/grub.d) instead; dkms-guard then removes
# this file and leaves the default entry alone. To keep dkms-guard from
# ever pinning, link this file name to /dev/null.
GRUB_DEFAULT='%s'
`, why, kernel, id)
	dir := g.Paths.GrubDefaultsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := file.WriteAtomicFile(g.Paths.GrubPin(), []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", g.Paths.Rel(g.Paths.GrubPin()), err)
	}
	where := g.Paths.Rel(g.Paths.GrubPin())
	if regenerate {
		return where, g.update(ctx)
	}
	return where, nil
}

// Unpin removes the snippet, if it is dkms-guard's, and regenerates grub.cfg.
func (g Grub) Unpin(ctx context.Context, regenerate bool) error {
	ours, err := g.snippet()
	if err != nil && !errors.Is(err, ErrMasked) {
		return err // a masked name holds no pin of dkms-guard's: nothing to remove
	}
	if ours {
		if err := os.Remove(g.Paths.GrubPin()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if regenerate {
		return g.update(ctx)
	}
	return nil
}

// Overridden reads the default entry the generated grub.cfg holds: grub.d
// snippets are shell, sourced in name order (a later zz-local.cfg with
// GRUB_DEFAULT=0 wins over dkms-guard's), so only grub-mkconfig's output
// tells what GRUB will boot.
func (g Grub) Overridden(kernel string) string {
	id, err := g.EntryID(kernel)
	if err != nil {
		return ""
	}
	data, err := file.ReadRegular(g.Paths.GrubConfig(), 16<<20)
	if err != nil {
		return ""
	}
	defaults := Defaults(data)
	if len(defaults) == 0 || slices.Contains(defaults, id) {
		return ""
	}
	return defaults[len(defaults)-1]
}

// Defaults lists the values of grub.cfg's `set default=` lines but the
// one for a one-time next_entry (00_header writes both).
func Defaults(cfg []byte) []string {
	var out []string
	for line := range strings.Lines(string(cfg)) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "set default=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if v != "${next_entry}" {
			out = append(out, v)
		}
	}
	return out
}

func (g Grub) update(ctx context.Context) error {
	if err := (program.Cmd{Name: "update-grub", Timeout: genTimeout, Out: g.Out}).Run(ctx); err != nil {
		return fmt.Errorf("update-grub: %w", err)
	}
	return nil
}

// SystemdBoot pins with `bootctl set-default`, an EFI variable that
// overrides loader.conf's default; clearing it gives loader.conf back.
type SystemdBoot struct {
	Paths paths.Paths
	Out   io.Writer
}

// Name is "systemd-boot".
func (SystemdBoot) Name() string { return "systemd-boot" }

// AdminDefault is "": loader.conf's default is what Unpin gives back.
func (SystemdBoot) AdminDefault() string { return "" }

// Overridden is "": the EFI variable is what systemd-boot boots.
func (SystemdBoot) Overridden(string) string { return "" }

// entry is one line of `bootctl list --json=short`.
type entry struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Linux   string `json:"linux"`
}

// EntryToken is what kernel-install names this installation's boot
// entries after (TOKEN-KVER.conf; kernel-install(8), --entry-token=auto):
// /etc/kernel/entry-token, else the machine id, else os-release's
// IMAGE_ID or ID. "" when none can be read. On an ESP shared by several
// installations, the kernel version alone names another's entry too.
func EntryToken(p paths.Paths) string {
	for _, name := range []string{p.KernelEntryToken(), p.MachineID()} {
		if data, err := file.ReadRegular(name, 4<<10); err == nil {
			if t := strings.TrimSpace(string(data)); t != "" && t != "uninitialized" {
				return t
			}
		}
	}
	for _, name := range p.OSReleaseFiles() {
		data, err := file.ReadRegular(name, 64<<10)
		if err != nil {
			continue
		}
		vars, err := shellconf.Parse(bytes.NewReader(data), name)
		if err != nil {
			continue
		}
		for _, key := range []string{"IMAGE_ID", "ID"} {
			if v := vars.Get(key); vars.Known(key) && v != "" {
				return v
			}
		}
		return ""
	}
	return ""
}

// ours tells whether id is the entry kernel-install made for kernel under
// token: TOKEN-KVER.conf, or with a boot-counting suffix (TOKEN-KVER+3-0.conf).
func ours(id, token, kernel string) bool {
	rest, ok := strings.CutPrefix(id, token+"-"+kernel)
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ".conf")
	return ok && (rest == "" || strings.HasPrefix(rest, "+") && strings.Trim(rest[1:], "0123456789-") == "")
}

// Pin finds kernel's entry of this installation with `bootctl list` and
// sets it as the default.
func (s SystemdBoot) Pin(ctx context.Context, kernel, _ string, _ bool) (string, error) {
	token := EntryToken(s.Paths)
	if token == "" {
		return "", fmt.Errorf("cannot tell this installation's boot entries: no %s, %s nor os-release ID",
			s.Paths.Rel(s.Paths.KernelEntryToken()), s.Paths.Rel(s.Paths.MachineID()))
	}
	out := &program.Capped{Max: 4 << 20}
	if err := (program.Cmd{Name: "bootctl", Args: []string{"list", "--json=short", "--no-pager"}, Timeout: genTimeout, Out: out, Err: s.Out}).Run(ctx); err != nil {
		return "", fmt.Errorf("bootctl list: %w", err)
	}
	var entries []entry
	if err := json.Unmarshal(out.Bytes(), &entries); err != nil {
		return "", fmt.Errorf("bootctl list: %w", err)
	}
	for _, e := range entries {
		if ours(e.ID, token, kernel) {
			if err := (program.Cmd{Name: "bootctl", Args: []string{"set-default", e.ID}, Timeout: genTimeout, Out: s.Out}).Run(ctx); err != nil {
				return "", fmt.Errorf("bootctl set-default %s: %w", e.ID, err)
			}
			return e.ID, nil
		}
	}
	return "", fmt.Errorf("no systemd-boot entry %s in bootctl list", report.Name(token+"-"+kernel+".conf"))
}

// Pinned tells whether the EFI variable names one of this installation's
// kernel entries, as Pin sets it.
func (s SystemdBoot) Pinned() bool {
	id := loaderEntryDefault(s.Paths)
	token := EntryToken(s.Paths)
	return id != "" && token != "" && strings.HasPrefix(id, token+"-") && strings.HasSuffix(id, ".conf")
}

// loaderEntryDefault reads the EFI variable: four bytes of attributes,
// then UTF-16LE text ending in a NUL.
func loaderEntryDefault(p paths.Paths) string {
	data, err := file.ReadRegular(p.LoaderEntryDefault(), 64<<10)
	if err != nil || len(data) < 4 {
		return ""
	}
	var units []uint16
	for i := 4; i+1 < len(data); i += 2 {
		u := uint16(data[i]) | uint16(data[i+1])<<8
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	return string(utf16.Decode(units))
}

// Unpin clears the EFI variable: bootctl(1) removes it when given an
// empty id, which gives loader.conf's default back.
func (s SystemdBoot) Unpin(ctx context.Context, _ bool) error {
	if err := (program.Cmd{Name: "bootctl", Args: []string{"set-default", ""}, Timeout: genTimeout, Out: s.Out}).Run(ctx); err != nil {
		return fmt.Errorf(`bootctl set-default "": %w`, err)
	}
	return nil
}
