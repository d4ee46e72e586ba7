package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/plan"
)

func (ce *cmdEnv) aptPlanCommand() *cli.Command {
	return &cli.Command{
		Name:      "apt-plan",
		Usage:     "record what this apt run installs, upgrades and removes (DPkg::Pre-Install-Pkgs hook)",
		UsageText: "dkms-guard apt-plan < apt-hook-protocol-v3",
		Description: `Reads apt's Pre-Install-Pkgs hook protocol, version 3, from the file
descriptor named by APT_HOOK_INFO_FD (standard input when unset), and
records which packages this run installs, upgrades or removes, so that
post-invoke can rebuild the modules of upgraded packages.

Then, before dpkg starts, it keeps the installed builds of every module
version whose package this run upgrades, reinstalls or downgrades (dkms
mktarball, with the source, in /var/lib/dkms-guard/kept): the package's
prerm removes them before the new version is known to build. Removals
keep nothing; KEEP_WORKING_BUILDS=no in /etc/default/dkms-guard neither.

apt picks the protocol version by the first word of the hook command, so
the command must start with the binary's path and the configuration must
say DPkg::Tools::Options::/usr/sbin/dkms-guard::Version "3"; any other
version is reported as an E: line and ignored. apt always goes on: the
command exits 0 unless it is called with arguments.`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			in, closeIn, err := ce.hookInput()
			if err != nil {
				// apt may still write the protocol to stdin: read it to its
				// end, so that apt never sees its pipe closed early.
				io.Copy(io.Discard, ce.stdin)
				return err
			}
			defer closeIn()
			err = ce.aptHooks().AptPlan(c.Context, in)
			if errors.Is(err, plan.ErrVersion) {
				self, _ := os.Executable()
				if self == "" {
					self = "/usr/sbin/dkms-guard"
				}
				return fmt.Errorf("%w; set DPkg::Tools::Options::%s::Version \"3\" and start the hook command with that path (see /etc/apt/apt.conf.d/80dkms-guard)", err, self)
			}
			return err
		},
	}
}

// hookInput is apt's hook input: the descriptor in APT_HOOK_INFO_FD, or stdin.
func (ce *cmdEnv) hookInput() (io.Reader, func(), error) {
	s := os.Getenv("APT_HOOK_INFO_FD")
	if s == "" || s == "0" {
		return ce.stdin, func() {}, nil
	}
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return nil, nil, fmt.Errorf("APT_HOOK_INFO_FD=%q is not a file descriptor", s)
	}
	f := os.NewFile(uintptr(fd), "apt-hook-info")
	return f, func() { f.Close() }, nil
}
