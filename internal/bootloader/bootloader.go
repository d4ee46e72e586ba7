// Package bootloader sets and clears the default boot entry: for GRUB a
// snippet in /etc/default/grub.d that sets GRUB_DEFAULT to a kernel's menu
// entry (as Proxmox's kernel pin does), for systemd-boot `bootctl
// set-default`. It never overrides an administrator's own choice of
// default entry: Loader.AdminDefault reports it and the caller only warns.
package bootloader

import (
	"bufio"
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
	"sort"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
	"github.com/dkms-guard/dkms-guard/internal/state"
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
			return SystemdBoot{Out: out}
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

// AdminDefault reads GRUB_DEFAULT as grub-mkconfig would: /etc/default/grub,
// then /etc/default/grub.d/*.cfg in name order, leaving out dkms-guard's
// own snippet. 0 (Debian's default) or nothing is no choice; a value
// dkms-guard cannot read for certain counts as one.
func (g Grub) AdminDefault() string {
	files := []string{g.Paths.GrubDefaults()}
	more, _ := filepath.Glob(filepath.Join(g.Paths.GrubDefaultsDir(), "*.cfg"))
	sort.Strings(more)
	vars := shellconf.New()
	setBy := ""
	for _, f := range append(files, more...) {
		if f == g.Paths.GrubPin() {
			continue
		}
		data, err := paths.ReadRegular(f, 1<<20)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Sprintf("%s cannot be read (%v)", g.Paths.Rel(f), err)
		}
		v, err := shellconf.Parse(bytes.NewReader(data), f)
		if err != nil {
			return fmt.Sprintf("%s cannot be parsed (%v)", g.Paths.Rel(f), err)
		}
		before := vars.Get("GRUB_DEFAULT")
		vars.Merge(v)
		if vars.Get("GRUB_DEFAULT") != before || !v.Known("GRUB_DEFAULT") {
			setBy = g.Paths.Rel(f)
		}
	}
	switch val := vars.Get("GRUB_DEFAULT"); {
	case !vars.Known("GRUB_DEFAULT"):
		return fmt.Sprintf("GRUB_DEFAULT is set in a way dkms-guard cannot read (%s %s)", setBy, vars.Why("GRUB_DEFAULT"))
	case val != "" && val != "0":
		return fmt.Sprintf("GRUB_DEFAULT=%q in %s", val, setBy)
	}
	return ""
}

// EntryID finds kernel's menu entry in the generated grub.cfg, as
// GRUB_DEFAULT names it: "SUBMENU-ID>ENTRY-ID" for an entry under
// "Advanced options", the entry's id alone at the top level. The recovery
// entries are left out.
func (g Grub) EntryID(kernel string) (string, error) {
	data, err := paths.ReadRegular(g.Paths.GrubConfig(), 16<<20)
	if err != nil {
		return "", err
	}
	want := "gnulinux-" + kernel + "-advanced-"
	submenu := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
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

// Pin writes the snippet (atomically, 0644) and regenerates grub.cfg.
func (g Grub) Pin(ctx context.Context, kernel, why string, regenerate bool) (string, error) {
	id, err := g.EntryID(kernel)
	if err != nil {
		return "", err
	}
	text := fmt.Sprintf(`# Written by dkms-guard: %s
# so the default boot entry stays on %s. dkms-guard removes this file once
# the newer kernels have their boot-critical modules; "dkms-guard unpin"
# removes it now. Do not edit it: set GRUB_DEFAULT in /etc/default/grub
# instead (dkms-guard then leaves the default entry alone).
GRUB_DEFAULT='%s'
`, why, kernel, id)
	dir := g.Paths.GrubDefaultsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	if err := state.WriteAtomic(root, filepath.Base(g.Paths.GrubPin()), []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", g.Paths.Rel(g.Paths.GrubPin()), err)
	}
	where := "GRUB_DEFAULT in " + g.Paths.Rel(g.Paths.GrubPin())
	if regenerate {
		return where, g.update(ctx)
	}
	return where, nil
}

// Unpin removes the snippet and regenerates grub.cfg.
func (g Grub) Unpin(ctx context.Context, regenerate bool) error {
	if err := os.Remove(g.Paths.GrubPin()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if regenerate {
		return g.update(ctx)
	}
	return nil
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
	Out io.Writer
}

// Name is "systemd-boot".
func (SystemdBoot) Name() string { return "systemd-boot" }

// AdminDefault is "": loader.conf's default is what Unpin gives back.
func (SystemdBoot) AdminDefault() string { return "" }

// entry is one line of `bootctl list --json=short`.
type entry struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Linux   string `json:"linux"`
}

// Pin finds kernel's entry with `bootctl list` and sets it as the default.
func (s SystemdBoot) Pin(ctx context.Context, kernel, _ string, _ bool) (string, error) {
	out := &program.Capped{Max: 4 << 20}
	if err := (program.Cmd{Name: "bootctl", Args: []string{"list", "--json=short", "--no-pager"}, Timeout: genTimeout, Out: out, Err: s.Out}).Run(ctx); err != nil {
		return "", fmt.Errorf("bootctl list: %w", err)
	}
	var entries []entry
	if err := json.Unmarshal(out.Bytes(), &entries); err != nil {
		return "", fmt.Errorf("bootctl list: %w", err)
	}
	for _, e := range entries {
		if e.Version == kernel || strings.HasSuffix(e.Linux, "vmlinuz-"+kernel) || strings.Contains(e.ID, "-"+kernel+".conf") {
			if err := (program.Cmd{Name: "bootctl", Args: []string{"set-default", e.ID}, Timeout: genTimeout, Out: s.Out}).Run(ctx); err != nil {
				return "", fmt.Errorf("bootctl set-default %s: %w", e.ID, err)
			}
			return "the EFI variable LoaderEntryDefault (bootctl set-default " + e.ID + ")", nil
		}
	}
	return "", fmt.Errorf("no systemd-boot entry for %q in bootctl list", kernel)
}

// Unpin clears the EFI variable.
func (s SystemdBoot) Unpin(ctx context.Context, _ bool) error {
	if err := (program.Cmd{Name: "bootctl", Args: []string{"set-default", ""}, Timeout: genTimeout, Out: s.Out}).Run(ctx); err != nil {
		return fmt.Errorf(`bootctl set-default "": %w`, err)
	}
	return nil
}
