package app

import "github.com/urfave/cli/v2"

func (ce *cmdEnv) kernelPreinstCommand() *cli.Command {
	return &cli.Command{
		Name:      "kernel-preinst",
		Usage:     "keep the DKMS builds of a kernel that is about to be reinstalled (/etc/kernel/preinst.d hook)",
		UsageText: "dkms-guard kernel-preinst KERNEL [IMAGE]",
		Description: `Run by /etc/kernel/preinst.d/00dkms-guard before KERNEL's image package is
unpacked, and before dkms's own hook in that directory, which dkms 3.1.6
and later ship: that hook unbuilds every DKMS module of KERNEL when its
image is reinstalled or upgraded at the same version, before anyone knows
whether the modules build again. kernel-preinst first keeps each of those
builds (dkms mktarball --binaries-only, in /var/lib/dkms-guard/kept).

The kernel's postinst.d hook (autoinstall) puts a kept build back (dkms
ldtarball, dkms install) when its module's rebuild fails, once its
vermagic and symbol versions are checked against the reinstalled kernel,
before initramfs-tools builds the initramfs: one line names the module,
the kernel and the rebuild's log, a W: line like the failed rebuild's own
(an E: line where the module's package changed in the same apt run). A
build that does not fit the kernel is dropped, with an E: line saying
what differs.

Where dkms has no preinst.d hook (dkms 3.0), the builds stay and nothing
is kept; with KEEP_WORKING_BUILDS=no in /etc/default/dkms-guard nothing is
kept either. A new kernel has no builds and costs one look at dkms's tree.
Always exits 0 (2 on wrong arguments).`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			return ce.kernelHooks(c.Args().First()).Preinst(c.Context, c.Args().First())
		},
	}
}
