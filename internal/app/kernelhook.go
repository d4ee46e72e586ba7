package app

import (
	"os"

	"github.com/dkms-guard/dkms-guard/internal/kernelhook"
)

// kernelHooks builds what autoinstall, kernel-preinst, kernel-postinst,
// kernel-prerm, rebuild and drop-kept need; kernel is the kernel a hook
// runs for ("" for rebuild). The hooks' parent is run-parts when
// dkms-guard runs from /etc/kernel/*.d.
func (ce *cmdEnv) kernelHooks(kernel string) *kernelhook.Hooks {
	b := ce.builder()
	return &kernelhook.Hooks{
		Paths: ce.paths, Machine: ce.host(), Builder: b, Results: ce.recorder(b), Boot: ce.keeper(kernel), Report: ce.rep,
		Notes: ce.secureBootLines, Keeper: ce.kernelKeeper, HookDir: ce.host().HookDir(os.Getppid()),
	}
}
