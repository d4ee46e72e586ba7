package app

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"
)

func (ce *cmdEnv) dropKeptCommand() *cli.Command {
	return &cli.Command{
		Name:      "drop-kept",
		Usage:     "drop every kept archive, leaving put-back builds installed (run by the package's prerm when dkms-guard is removed)",
		UsageText: "dkms-guard drop-kept",
		Description: `Drops every build dkms-guard keeps in /var/lib/dkms-guard/kept: the
archives and kept.json. An older module version it put back into dkms's
tree in place of a newer one that did not install stays installed, an
ordinary dkms module from then on (removing dkms-guard must not take a
working module away); an N: line names each, with the commands that
remove it (dkms remove -m MODULE -v VERSION --all, and rm -rf of the
/usr/src/MODULE-VERSION directory when the put-back recreated it). A
kernel's build put back after its reinstall is the build dkms had before:
nothing is said of it.

The package's prerm runs it when dkms-guard is removed: a removed
dkms-guard can no longer keep anything, nor drop what it put back once its
replacement arrives. Exits 0, or 3 when dkms-guard cannot work.`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			if os.Geteuid() != 0 && ce.paths.Root == "/" {
				return errors.New("drop-kept must be run as root: dkms remove needs it")
			}
			return ce.kernelHooks("").DropKept(c.Context)
		},
	}
}
