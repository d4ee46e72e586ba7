package app

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/aptrun"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

func (ce *cmdEnv) postInvokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "post-invoke",
		Usage:     "rebuild upgraded packages' modules for every kernel and print the summary (DPkg::Post-Invoke hook)",
		UsageText: "dkms-guard post-invoke",
		Description: `After dpkg finishes: every DKMS module whose own package was installed,
upgraded, reinstalled or configured in this run, or whose version appeared
in it, is built and installed in its newest version for every installed
kernel that has headers (stock dkms only builds for the running and the
newest kernel). A failure of such a module is an E: line; failures of
foreign or unchanged modules stay W: lines.

Then it prints one summary (kernel, module, result, log), which kernels
have all their modules and are safe to boot, and how to retry; keeps it
for "dkms-guard status"; and writes /var/lib/dkms-guard.notice while a
kernel lacks a module.

It exits 0 even when modules failed: dpkg is done and apt must not report
the upgrade as failed. It exits 3 only when dkms-guard is misconfigured
(an unsafe state directory).`,
		Action: ce.hook(exitOK, func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			err := aptrun.PostInvoke(c.Context, ce.env, os.Getppid())
			if errors.Is(err, state.ErrUnsafe) {
				return &exitError{code: exitTrouble, err: fmt.Errorf("post-invoke: %w", err)}
			}
			return err
		}),
	}
}
