package guard

import (
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// KernelView is one kernel as status shows it, from the live DKMS tree and
// the recorded results.
type KernelView struct {
	Kernel    string    `json:"kernel"`
	Running   bool      `json:"running"`
	Bootable  bool      `json:"bootable"`
	Headers   bool      `json:"headers"`
	Installed []string  `json:"installed"`
	Missing   []Missing `json:"missing"`
}

// Missing is a module a kernel does not have, and why.
type Missing struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	Why     string `json:"why"`
	Failed  bool   `json:"failed"` // its build failed: status exits 1
	Log     string `json:"log,omitempty"`
}

// Status builds the per-kernel view. Modules a kernel does not support, and
// modules that do not ask for AUTOINSTALL, are not missing.
func (e *Env) Status(all *state.Results) ([]KernelView, error) {
	kernels, err := e.Kernels()
	if err != nil {
		return nil, err
	}
	tree, err := dkms.ReadTree(e.Paths.DKMSTree())
	if err != nil {
		return nil, err
	}
	running := e.Proc.Release()
	eng := e.Engine("", "status")
	views := []KernelView{}
	for _, k := range kernels {
		v := KernelView{Kernel: k, Running: k == running, Headers: eng.HasHeaders(k), Installed: []string{}, Missing: []Missing{}}
		v.Bootable = exists(e.Paths.KernelImage(k))
		for _, name := range tree.Names() {
			if m, ok := tree.InstalledFor(name, k); ok {
				v.Installed = append(v.Installed, report.MV(m.Name, m.Version))
				continue
			}
			newest, _ := tree.Newest(name)
			if r, ok := all.Get(k, name); ok && r.Outcome != state.Installed {
				if r.Outcome == state.Unsupported {
					continue
				}
				v.Missing = append(v.Missing, Missing{Module: r.Module, Version: r.Version, Why: report.Describe(r), Failed: r.Missing(), Log: r.Log})
				continue
			}
			c, err := dkms.ReadConf(newest.ConfFile(e.Paths.DKMSTree()), e.Paths.DKMSConfDir(), newest.Name, newest.Version, k, e.Arch)
			if err == nil && (!c.Autoinstall() || c.Unsupported(k, e.Arch, func() []byte { return nil }) != "") {
				continue
			}
			why := "not built yet: dkms-guard rebuild --kernel " + report.Name(k)
			if !v.Headers {
				why = "not built: no headers for this kernel are installed"
			}
			v.Missing = append(v.Missing, Missing{Module: newest.Name, Version: newest.Version, Why: why})
		}
		views = append(views, v)
	}
	return views, nil
}
