package app

import "github.com/urfave/cli/v2"

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

A kernel then left without any version of a module whose build apt-plan
kept gets that build back (dkms ldtarball, dkms install --force, depmod,
and its initramfs where the module was in it or is boot-critical), with
one E: line per module naming the version that failed, the one kept, the
kernels and how to retry (a W: line where the new version does not
support those kernels, was not built for lack of headers, or its failure
was itself a W: line). Kept
builds whose replacement is installed,
whose kernel is gone or whose package this run removed are dropped.

Then it prints one summary (kernel, module, result, log), which kernels
have all their modules and are safe to boot, and how to retry; keeps it
for "dkms-guard status"; and writes /var/lib/dkms-guard.notice while a
kernel lacks a module or runs a kept build.

Under unattended-upgrades with Unattended-Upgrade::Mail set and
Unattended-Upgrade::MailReport "only-on-error" (or the older
MailOnlyOnError "true"), unattended-upgrades mails nothing, since dpkg
succeeded: post-invoke then mails the builds that failed in this step
itself, through sendmail -oi -t, to that address (From:
Unattended-Upgrade::Sender, else root), each failure once per
unattended-upgrades run. With "always" or "on-change" unattended-upgrades
mails its dpkg log, which holds these lines. A mail that cannot be sent is
a W: line.

It exits 0 even when modules failed, and when dkms-guard itself cannot
work (an E: line says why): dpkg is done and apt must not report the
upgrade as failed. It exits 2 only when called with arguments.`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			return ce.aptHooks().PostInvoke(c.Context)
		},
	}
}
