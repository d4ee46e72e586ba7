package app

import "github.com/urfave/cli/v2"

func (ce *cmdEnv) kernelPrermCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernel-prerm",
		Usage:     "forget a kernel that is being removed (/etc/kernel/prerm.d hook)",
		UsageText: "dkms-guard kernel-prerm KERNEL [IMAGE]",
		Description: `Run by /etc/kernel/prerm.d/dkms-guard: drops KERNEL's build results and
logs, so that status and the notification file stop mentioning it, and
the builds dkms-guard kept for it (a version kept for no other kernel
leaves dkms's tree and /usr/src). dkms's own prerm.d hook removes the
modules. Always exits 0 (2 on wrong arguments).`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			return ce.kernelHooks(c.Args().First()).Prerm(c.Context, c.Args().First())
		},
	}
}
