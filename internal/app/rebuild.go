package app

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/kernelhook"
)

func (ce *cmdEnv) rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:      "rebuild",
		Usage:     "retry building DKMS modules for installed kernels",
		UsageText: "dkms-guard rebuild [--kernel KERNEL]... [--module MODULE]...",
		Description: `Builds and installs, for every kernel with headers (or each --kernel), what
autoinstall would: every module with no version installed for it. With
--module, only the named modules are tried, whether or not their dkms.conf
sets AUTOINSTALL. Each build has its own log in /var/log/dkms-guard/KERNEL/;
results replace the recorded ones, and the notification file goes away once
no kernel lacks a module. A kernel running a kept older build of a module
(put back when the newer version failed; see post-invoke) counts as lacking
the newer version, which is tried again (with no --module, unless that
kernel does not support it); once it installs, the kept build is dropped.

Run it after fixing what made a build fail (a newer module package, missing
build dependencies). It waits for a build running under apt to finish.

Exits 0 when every module tried was installed or is unsupported by the
kernel, 1 when one failed or was skipped.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "build for `KERNEL` only (repeatable)"},
			&cli.StringSliceFlag{Name: "module", Aliases: []string{"m"}, Usage: "build `MODULE` only (repeatable)"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			if os.Geteuid() != 0 && ce.paths.Root == "/" {
				return errors.New("rebuild must be run as root: dkms install needs it")
			}
			failed, err := ce.kernelHooks("").Rebuild(c.Context, c.StringSlice("kernel"), c.StringSlice("module"))
			if errors.Is(err, kernelhook.ErrUsage) {
				return usageErr(err)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return errors.Join(errFailures, errReported) // the E: lines are out
			}
			return nil
		},
	}
}
