package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/boot"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

func (ce *cmdEnv) statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the last apt run's summary and which kernels lack which modules",
		UsageText: "dkms-guard status [--json]",
		Description: `Prints, on standard output, the summary of the last apt run that built DKMS
modules, then every kernel in /lib/modules with the DKMS modules it has and
the ones it lacks, and why (build failed with its log, no headers, not
built yet). Modules a kernel does not support are not listed as lacking. Then the
boot: which kernel the next boot uses, whether dkms-guard keeps it the
default because a newer kernel lacks a boot-critical module, and which
DKMS modules are boot-critical and why (in the initramfs, the file system
of / or /boot, listed by the administrator).

With --json the same data is one JSON object, for scripts.

status only reads: it never creates, repairs or moves a file. The state
in /var/lib/dkms-guard is root's; another user gets what the world-readable
notice file /var/lib/dkms-guard.notice says.

Exits 1 when some kernel lacks a module because its build failed, 0
otherwise.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			ce.warnBypassed()
			st, err := state.OpenReadOnly(ce.paths, ce.rep)
			switch {
			case err == nil:
				defer st.Close()
			case errors.Is(err, state.ErrNoState):
				st = nil
			case errors.Is(err, fs.ErrPermission):
				return ce.statusUnprivileged(c.Bool("json"))
			default:
				return err
			}
			b := ce.builder()
			rec := ce.recorder(b)
			all := rec.Load(st)
			var last *state.LastRun
			var pin *state.Boot
			if st != nil {
				var lr state.LastRun
				ok, err := st.Load(state.LastRunFile, &lr)
				if err != nil {
					return err
				}
				if ok {
					last = &lr
				}
				var b state.Boot
				if ok, err = st.Load(state.BootFile, &b); err != nil {
					return err
				} else if ok {
					pin = &b
				}
			}
			view, err := rec.View(all)
			if err != nil {
				return err
			}
			failed := false
			for _, k := range view {
				failed = failed || len(k.Lacks()) > 0
			}
			bootStatus := ce.keeper("").Show(c.Context, view, pin)
			if c.Bool("json") {
				out := struct {
					Schema  int              `json:"schema"`
					LastRun *state.LastRun   `json:"last_run"`
					Kernels []results.Kernel `json:"kernels"`
					Boot    boot.Status      `json:"boot"`
					Failed  bool             `json:"failed"`
				}{state.Schema, last, view, bootStatus, failed}
				enc := json.NewEncoder(ce.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				results.Status(ce.stdout, last, view)
				bootStatus.Print(ce.stdout)
			}
			if failed {
				return errors.Join(errFailures, errReported)
			}
			return nil
		},
	}
}

// statusUnprivileged answers a user who may not read the state: the
// notice file is world-readable and exists exactly while a kernel lacks a
// module whose build failed.
func (ce *cmdEnv) statusUnprivileged(asJSON bool) error {
	name := ce.paths.Notice()
	text, err := os.ReadFile(name)
	lacking := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", ce.paths.Rel(name), err)
	}
	if asJSON {
		out := struct {
			Schema  int    `json:"schema"`
			Notice  string `json:"notice"`
			Failed  bool   `json:"failed"`
			Partial string `json:"partial"`
		}{state.Schema, string(text), lacking, "run as root for the full status"}
		enc := json.NewEncoder(ce.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if lacking {
		fmt.Fprintf(ce.stdout, "A kernel lacks a DKMS module whose build failed: see %s, or run status as root for details\n", ce.paths.Rel(name))
	} else {
		fmt.Fprintf(ce.stdout, "No kernel is known to lack a DKMS module (no %s); run status as root for details\n", ce.paths.Rel(name))
	}
	if lacking {
		return errors.Join(errFailures, errReported)
	}
	return nil
}
