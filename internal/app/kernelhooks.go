package app

import (
	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/kernelrun"
)

func (ce *cmdEnv) kernelPostinstCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernel-postinst",
		Usage:     "report the DKMS modules a new kernel's initramfs gets (/etc/kernel/postinst.d hook)",
		UsageText: "dkms-guard kernel-postinst KERNEL [IMAGE]",
		Description: `Run by /etc/kernel/postinst.d/dkms-guard, after dkms's own hook (which
builds the modules through dkms-guard autoinstall) and before
initramfs-tools: prints which DKMS modules KERNEL has and which it lacks,
and refreshes the notification file. Always exits 0 (2 on wrong arguments).`,
		Action: ce.hook(exitOK, func(c *cli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			return kernelrun.Postinst(c.Context, ce.env, c.Args().First())
		}),
	}
}

func (ce *cmdEnv) kernelPrermCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernel-prerm",
		Usage:     "forget a kernel that is being removed (/etc/kernel/prerm.d hook)",
		UsageText: "dkms-guard kernel-prerm KERNEL [IMAGE]",
		Description: `Run by /etc/kernel/prerm.d/dkms-guard: drops KERNEL's build results and
logs, so that status and the notification file stop mentioning it. dkms's
own prerm.d hook removes the modules. Always exits 0 (2 on wrong arguments).`,
		Action: ce.hook(exitOK, func(c *cli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			return kernelrun.Prerm(c.Context, ce.env, c.Args().First())
		}),
	}
}
