package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/boot"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/secureboot"
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
built yet). Modules a kernel does not support are not listed as lacking.
An older build that dkms-guard kept and put back because the version that
was to replace it failed (or does not support that kernel) is listed as
kept, with that failure and its log: the kernel has the module, so it is
not lacking. Then the space the kept builds take in
/var/lib/dkms-guard/kept, while there are any. Then the
boot: which kernel the next boot uses, whether dkms-guard keeps it the
default because a newer kernel lacks a boot-critical or in-use module, and
each DKMS module that keeps an older kernel the default, with its class and
why: boot-critical (in the initramfs, the file system of / or /boot, listed
by the administrator) or in-use (loaded now, loaded at boot by a file or the
kernel command line).

Where the machine booted through UEFI with Secure Boot on (mokutil
--sb-state) and the key dkms signs modules with is not enrolled (mokutil
--test-key), it says so and how to enrol it: modules that built will not
load until then.

With --json the same data is one JSON object, for scripts and
configuration management: a stable interface whose "schema" field is its
version, within which fields are only added (dkms-guard(8) documents each).
Each lacking module has a reason code: build_failed, timed_out,
depmod_failed, depends_failed, no_headers, not_built or unknown; each kept
build one of these or unsupported.

status only reads: it never creates, repairs or moves a file. The state
in /var/lib/dkms-guard is root's; another user gets what the world-readable
notice file /var/lib/dkms-guard.notice says.

Exits 1 when some kernel lacks a module because its build failed, 0
otherwise (a kept build is not lacking); for another user, 1 while the
notice file exists.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			return ce.status(c.Context, c.Bool("json"))
		},
	}
}

// status shows the state as root sees it, or the notice's answer when this
// user may not read the state.
func (ce *cmdEnv) status(ctx context.Context, asJSON bool) error {
	ce.warnBypassed()
	rec, err := ce.readStatus()
	if err != nil {
		if ce.answerFromNotice(err) {
			return ce.statusUnprivileged(ctx, asJSON)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := ce.recorder(ce.builder())
	r.Kept = rec.kept
	view, err := r.View(rec.all)
	if err != nil {
		return err
	}
	space := results.KeptSpace(rec.kept, ce.paths.Rel(ce.paths.KeptDir()))
	failed := false
	for _, k := range view {
		failed = failed || len(k.Lacks()) > 0
	}
	bootStatus := ce.keeper("").Show(ctx, view, rec.pin)
	if asJSON {
		if err := ce.printJSON(statusJSON{state.Schema, rec.last, view, bootStatus, failed, ce.secureBoot(ctx), space}); err != nil {
			return err
		}
	} else {
		results.Status(ce.stdout, rec.last, view, space)
		bootStatus.Print(ce.stdout)
		printLines(ce.stdout, ce.secureBootLines(ctx, view))
	}
	if failed {
		return errors.Join(errFailures, errReported)
	}
	return nil
}

// statusJSON is status --json as root sees it: a stable interface for
// configuration-management tools, every field documented in statusFields,
// the man page's JSON OUTPUT (TestStatusJSONDocumented checks). Within a
// schema version fields are only added, never renamed, removed or given
// another meaning.
type statusJSON struct {
	Schema  int              `json:"schema"`
	LastRun *state.LastRun   `json:"last_run"`
	Kernels []results.Kernel `json:"kernels"`
	Boot    boot.Status      `json:"boot"`
	Failed  bool             `json:"failed"`
	// SecureBoot: whether modules dkms signs can load.
	SecureBoot secureboot.Status `json:"secure_boot"`
	// Kept: the builds kept until their replacement installs, and the
	// space they take.
	Kept results.Space `json:"kept"`
}

// statusUserJSON is status --json for a user who may not read the state:
// what the world-readable notice says.
type statusUserJSON struct {
	Schema  int    `json:"schema"`
	Notice  string `json:"notice"`
	Failed  bool   `json:"failed"`
	Partial string `json:"partial"`
}

// recorded is what status reads from the state directory.
type recorded struct {
	all  *state.Results
	last *state.LastRun // nil: none recorded
	pin  *state.Boot    // nil: no boot decision recorded
	kept *state.Kept    // the kept builds (none: empty)
}

// readStatus reads the state without changing it. A results file that
// cannot be read is a W: line and no results, as for the hooks; any file
// this user may not read is fs.ErrPermission.
func (ce *cmdEnv) readStatus() (*recorded, error) {
	rec := &recorded{all: &state.Results{Schema: state.Schema}, kept: &state.Kept{Schema: state.Schema}}
	st, err := state.OpenReadOnly(ce.paths, ce.rep)
	if errors.Is(err, state.ErrNoState) {
		return rec, nil
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	all, err := st.LoadResults()
	switch {
	case errors.Is(err, fs.ErrPermission):
		return nil, err
	case err != nil:
		ce.rep.Warnf("%v", err)
	default:
		rec.all = all
	}
	var last state.LastRun
	if ok, err := st.Load(state.LastRunFile, &last); err != nil {
		return nil, err
	} else if ok {
		rec.last = &last
	}
	var pin state.Boot
	if ok, err := st.Load(state.BootFile, &pin); err != nil {
		return nil, err
	} else if ok {
		rec.pin = &pin
	}
	var kept state.Kept
	if ok, err := st.Load(state.KeptFile, &kept); err != nil {
		return nil, err
	} else if ok {
		rec.kept = &kept
	}
	return rec, nil
}

// answerFromNotice tells whether status answers from the notice instead of
// failing: the state is root's (0700, files 0600), so a user gets a
// permission error, or, where root left it loose or odd, whatever else
// keeps a user from reading it. Root gets the error: exit 3.
func (ce *cmdEnv) answerFromNotice(err error) bool {
	return errors.Is(err, fs.ErrPermission) || os.Geteuid() != 0
}

// maxNotice bounds the notice read: a few lines per kernel and module.
const maxNotice = 1 << 20

// statusUnprivileged answers a user who may not read the state: the
// notice file is world-readable and exists while something is to be told
// (a kernel lacks a module whose build failed or a needed one, runs a kept
// build, or dkms's key is not enrolled; FILES in the man page). Only a regular file of at most maxNotice bytes
// is read (a FIFO would block, a huge file eat the memory); another one
// still says that a kernel may lack a module.
func (ce *cmdEnv) statusUnprivileged(ctx context.Context, asJSON bool) error {
	name := ce.paths.Notice()
	text, err := file.ReadRegular(name, maxNotice)
	lacking := !errors.Is(err, fs.ErrNotExist)
	if err != nil && lacking {
		ce.rep.Warnf("ignored the notice's text: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if asJSON {
		if err := ce.printJSON(statusUserJSON{state.Schema, string(text), lacking, "run as root for the full status"}); err != nil {
			return err
		}
	} else if lacking {
		// The notice is there for a failed build, a kernel lacking a
		// boot-critical or in-use module, or an unenrolled signing key:
		// this line must not claim one of them.
		fmt.Fprintf(ce.stdout, "dkms-guard has a notice for this machine (a kernel lacks a DKMS module, or DKMS modules will not load): see %s, or run status as root for details\n", ce.paths.Rel(name))
	} else {
		fmt.Fprintf(ce.stdout, "No kernel is known to lack a DKMS module (no %s); run status as root for details\n", ce.paths.Rel(name))
	}
	if lacking {
		return errors.Join(errFailures, errReported)
	}
	return nil
}

// printJSON writes v as indented JSON on stdout.
func (ce *cmdEnv) printJSON(v any) error {
	enc := json.NewEncoder(ce.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
