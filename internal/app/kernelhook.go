package app

import "github.com/dkms-guard/dkms-guard/internal/kernelhook"

// kernelHooks builds what autoinstall, kernel-postinst, kernel-prerm and
// rebuild need; kernel is the kernel a hook runs for ("" for rebuild).
func (ce *cmdEnv) kernelHooks(kernel string) *kernelhook.Hooks {
	b := ce.builder()
	return &kernelhook.Hooks{Paths: ce.paths, Machine: ce.host(), Builder: b, Results: ce.recorder(b), Boot: ce.keeper(kernel), Report: ce.rep, Notes: ce.secureBootLines}
}
