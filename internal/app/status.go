package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/guard"
	"github.com/dkms-guard/dkms-guard/internal/report"
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

With --json the same data is one JSON object, for scripts.

Exits 1 when some kernel lacks a module because its build failed, 0
otherwise.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of text"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			var st *state.Store
			s, err := ce.env.OpenStore(false)
			switch {
			case err == nil:
				st = s
				defer st.Close()
			case errors.Is(err, state.ErrNoState):
			default:
				return &exitError{code: exitTrouble, err: err}
			}
			all := ce.env.LoadResults(st)
			var last *state.Report
			if st != nil {
				var rep state.Report
				ok, err := st.Load(state.ReportFile, &rep)
				if err != nil {
					return &exitError{code: exitTrouble, err: err}
				}
				if ok {
					last = &rep
				}
			}
			views, err := ce.env.Status(all)
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			failed := false
			for _, v := range views {
				for _, m := range v.Missing {
					failed = failed || m.Failed
				}
			}
			if c.Bool("json") {
				out := struct {
					Schema  int                `json:"schema"`
					LastRun *state.Report      `json:"last_run"`
					Kernels []guard.KernelView `json:"kernels"`
					Failed  bool               `json:"failed"`
				}{state.Schema, last, views, failed}
				enc := json.NewEncoder(ce.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return &exitError{code: exitTrouble, err: err}
				}
			} else {
				ce.printStatus(last, views)
			}
			if failed {
				return &exitError{code: exitFailures}
			}
			return nil
		},
	}
}

func (ce *cmdEnv) printStatus(last *state.Report, views []guard.KernelView) {
	w := ce.stdout
	if last == nil {
		fmt.Fprintln(w, "Last apt run: none recorded")
	} else {
		fmt.Fprintf(w, "Last apt run: %s\n", last.Time.Format("2006-01-02 15:04:05 UTC"))
		for _, in := range last.Interrupted {
			fmt.Fprintf(w, "  (it also covers the interrupted apt run of %s: %s)\n", in.Started.Format("2006-01-02 15:04:05 UTC"), in.Why)
		}
		report.Table(w, "  ", last.Rows)
	}
	fmt.Fprintln(w)
	if len(views) == 0 {
		fmt.Fprintln(w, "Kernels: none in /lib/modules")
		return
	}
	fmt.Fprintln(w, "Kernels:")
	for _, v := range views {
		var tags []string
		if v.Running {
			tags = append(tags, "running")
		}
		if !v.Headers {
			tags = append(tags, "no headers")
		}
		tag := ""
		if len(tags) > 0 {
			tag = " (" + strings.Join(tags, ", ") + ")"
		}
		have := "none"
		if len(v.Installed) > 0 {
			have = strings.Join(v.Installed, ", ")
		}
		fmt.Fprintf(w, "  %s%s: has %s\n", report.Name(v.Kernel), tag, have)
		for _, m := range v.Missing {
			fmt.Fprintf(w, "    lacks %s: %s\n", report.MV(m.Module, m.Version), m.Why)
		}
	}
}
