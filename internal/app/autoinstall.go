package app

import (
	"fmt"
	"os/exec"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

func (ce *cmdEnv) autoinstallCommand() *cli.Command {
	return &cli.Command{
		Name:      "autoinstall",
		Usage:     "build and install every DKMS module for a kernel, one by one (dkms_autoinstaller replacement)",
		UsageText: "dkms-guard autoinstall start [KERNEL]",
		Description: `Does what "dkms_autoinstaller start KERNEL" does, which is what dkms's
/etc/kernel/header_postinst.d/dkms and /etc/kernel/postinst.d/dkms hooks
run: for every DKMS module with no version installed for KERNEL, the newest
version whose dkms.conf sets AUTOINSTALL is built and installed, in
BUILD_DEPENDS order. KERNEL defaults to the running kernel.

Unlike "dkms autoinstall", each module is built by its own "dkms install",
with its own time limit (--timeout) and its own log in
/var/log/dkms-guard/KERNEL/. A module the kernel does not support (dkms exit
77, BUILD_EXCLUSIVE_KERNEL, BUILD_EXCLUSIVE_ARCH, BUILD_EXCLUSIVE_CONFIG,
OBSOLETE_BY) is skipped; a failed build is a W: line. The command exits 0
whatever the modules do, so a kernel package never fails because of one.

A module with no version installed for KERNEL after the builds, whose
build dkms-guard kept (see kernel-preinst and apt-plan), gets it back. Run
from /etc/kernel/postinst.d, initramfs-tools builds the initramfs next;
from header_postinst.d or by hand, the initramfs is updated where the
module was in it or is boot-critical.

Like dkms_autoinstaller it does nothing when /etc/dkms/no-autoinstall exists
or when KERNEL has no headers (/lib/modules/KERNEL/build/include). The verbs
stop, restart, reload, force-reload and status are passed to the diverted
original, /usr/lib/dkms/dkms_autoinstaller.distrib.`,
		Action: func(c *cli.Context) error {
			verb := c.Args().First()
			switch verb {
			case "start", "":
				if err := wantArgs(c, 0, 2); err != nil {
					return err
				}
				return ce.kernelHooks(c.Args().Get(1)).Autoinstall(c.Context, c.Args().Get(1))
			case "stop", "restart", "force-reload", "status", "reload":
				return ce.passThrough(c)
			}
			return usageErr(fmt.Errorf("autoinstall: unknown verb %q; usage: dkms-guard autoinstall start [KERNEL]", verb))
		},
	}
}

// passThrough runs the diverted dkms_autoinstaller for the verbs dkms-guard
// has no business with (they are no-ops in dkms 3.0.x).
func (ce *cmdEnv) passThrough(c *cli.Context) error {
	orig := ce.paths.DivertedAutoinstaller()
	if !paths.Exists(orig) {
		return nil
	}
	cmd := exec.CommandContext(c.Context, orig, c.Args().Slice()...)
	cmd.Stdout = ce.stderr // hooks never write to stdout (debconf)
	cmd.Stderr = ce.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s: %w", ce.paths.Rel(orig), err)
	}
	return nil
}
