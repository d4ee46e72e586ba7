package app

import "github.com/urfave/cli/v2"

func (ce *cmdEnv) preInvokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "pre-invoke",
		Usage:     "snapshot the DKMS tree before dpkg runs (DPkg::Pre-Invoke hook)",
		UsageText: "dkms-guard pre-invoke",
		Description: `Records, before dpkg runs, every DKMS module version and the kernels it is
installed for. Which package ships each module (modules shipped by no
package are "foreign") is asked of dpkg by post-invoke, once per module
version, since dpkg-query -S is slow. A record left by an apt run that never reached
post-invoke (apt killed, machine rebooted) is detected, reported as a W:
line and folded into this run's summary; it is never reused as this run's
plan. On a machine without /var/lib/dkms it does nothing. It exits 0 unless
called with arguments.`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			return ce.aptHooks().PreInvoke(c.Context)
		},
	}
}
