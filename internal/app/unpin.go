package app

import "github.com/urfave/cli/v2"

func (ce *cmdEnv) unpinCommand() *cli.Command {
	return &cli.Command{
		Name:      "unpin",
		Usage:     "stop keeping an older kernel the default boot entry",
		UsageText: "dkms-guard unpin [--recorded-only]",
		Description: `While the newest kernel lacks a boot-critical DKMS module, or one in use
(loaded now, or at boot by /etc/modules, modules-load.d or modules-load= on
the kernel command line), dkms-guard keeps the newest kernel that has them
all the default boot entry (for GRUB with
/etc/default/grub.d/zz-dkms-guard.cfg, for systemd-boot with bootctl
set-default), and keeps that kernel from apt autoremove. unpin removes both
now and regenerates the bootloader configuration, so that the next boot uses
the bootloader's own default.

unpin sticks: /var/lib/dkms-guard/boot.json records that the newest kernel
was taken with what it lacks, and dkms-guard pins no more while it is the
newest kernel and lacks nothing else; a newer kernel, or the modules
building, ends that. To stop pinning for modules in use altogether set
KEEP_KERNEL_FOR=boot-critical in /etc/default/dkms-guard, to stop changing
the boot entry MANAGE_BOOT_ENTRY=no. Removing the dkms-guard package unpins
too, with --recorded-only.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{
				Name: "recorded-only",
				Usage: "remove only a pin that /var/lib/dkms-guard/boot.json records, and dkms-guard's GRUB file: " +
					"a systemd-boot default entry that boot.json does not record may be the administrator's " +
					"(the package's removal uses this)",
			},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			if err := ce.keeper("").Unpin(c.Context, c.Bool("recorded-only")); err != nil {
				return err
			}
			ce.tell(c.Context)
			return nil
		},
	}
}
