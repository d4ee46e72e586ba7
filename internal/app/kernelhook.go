package app

import "github.com/dkms-guard/dkms-guard/internal/kernelhook"

// kernelHooks builds what autoinstall, kernel-postinst, kernel-prerm and
// rebuild need.
func (ce *cmdEnv) kernelHooks() *kernelhook.Hooks {
	b := ce.builder()
	return &kernelhook.Hooks{Paths: ce.paths, Machine: ce.host(), Builder: b, Results: ce.recorder(b), Report: ce.rep}
}
