package app

import "github.com/urfave/cli/v2"

func (ce *cmdEnv) kernelPostinstCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernel-postinst",
		Usage:     "report the DKMS modules a new kernel's initramfs gets and keep the boot entry safe (/etc/kernel/postinst.d hook)",
		UsageText: "dkms-guard kernel-postinst KERNEL [IMAGE]",
		Description: `Run by /etc/kernel/postinst.d/dkms-guard, after dkms's own hook (which
builds the modules through dkms-guard autoinstall) and before
initramfs-tools and zz-update-grub: prints which DKMS modules KERNEL has
and which it lacks, and, if KERNEL lacks a boot-critical or in-use module
(KEEP_KERNEL_FOR), keeps the newest kernel that has them all the default
boot entry (zz-update-grub then
writes it into grub.cfg). Refreshes the notification file. Always exits 0
(2 on wrong arguments).`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			ce.warnBypassed()
			return ce.kernelHooks(c.Args().First()).Postinst(c.Context, c.Args().First())
		},
	}
}
