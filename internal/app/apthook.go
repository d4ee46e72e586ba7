package app

import (
	"os"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/aptconf"
	"github.com/dkms-guard/dkms-guard/internal/apthook"
	"github.com/dkms-guard/dkms-guard/internal/dpkg"
	"github.com/dkms-guard/dkms-guard/internal/mail"
)

// aptHooks builds what pre-invoke, apt-plan and post-invoke need. apt runs
// each hook as `sh -c CMD`: the parent is that shell, below apt.
func (ce *cmdEnv) aptHooks() *apthook.Hooks {
	b := ce.builder()
	return &apthook.Hooks{
		Paths: ce.paths, Machine: ce.host(), Owners: dpkg.Query{}, Builder: b,
		Results: ce.recorder(b), Boot: ce.keeper(""), Report: ce.rep, Now: time.Now, Parent: os.Getppid(),
		// The builds post-invoke adds after dpkg get four module timeouts
		// in all: apt is waiting (unattended-upgrades too).
		Budget: 4 * ce.timeout,
		Notes:  ce.secureBootLines,
		Mail:   &apthook.UUMail{Machine: ce.host(), Config: aptconf.Tool{}, Sender: mail.Sendmail{}},
		Keeper: ce.aptKeeper,
	}
}
