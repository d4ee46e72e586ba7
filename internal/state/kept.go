package state

import "time"

// KeptFile lists the last working builds dkms-guard keeps (package keep):
// the archives themselves are in paths.KeptDir.
const KeptFile = "kept.json"

// KeepWhy is why a build was kept.
type KeepWhy string

const (
	// KeptForUpgrade: the module's own package was upgraded or reinstalled
	// in an apt run (its prerm runs `dkms remove --all` before the new
	// version is known to build). The archive carries the source, since
	// dpkg removes /usr/src/M-V.
	KeptForUpgrade KeepWhy = "upgrade"
	// KeptForKernel: the kernel's image package was reinstalled or upgraded
	// at the same version (dkms 3.1.6+'s preinst.d hook unbuilds every
	// module of that kernel). The source stays: the archive has binaries only.
	KeptForKernel KeepWhy = "kernel"
)

// Kept is every build dkms-guard keeps.
type Kept struct {
	Schema int         `json:"schema"`
	Builds []KeptBuild `json:"builds"`
}

// KeptBuild is one module version's working build for one kernel, kept
// as a dkms archive (dkms mktarball) until its replacement is installed.
type KeptBuild struct {
	Module  string  `json:"module"`
	Version string  `json:"version"`
	Kernel  string  `json:"kernel"`
	Arch    string  `json:"arch,omitempty"`
	Why     KeepWhy `json:"why"`
	// Package is the module's package when it was kept ("" if none).
	Package string `json:"package,omitempty"`
	// Archive is the archive's file name inside paths.KeptDir; Size its
	// size in bytes.
	Archive string `json:"archive"`
	Size    int64  `json:"size"`
	// Source tells whether the archive carries the source tree: putting
	// it back recreates /usr/src/M-V, which dkms-guard then owns and
	// removes when the kept build is dropped (OwnsSource).
	Source bool `json:"source,omitempty"`
	// InInitramfs tells whether the kernel's initramfs held the module
	// when it was kept: putting it back then updates that initramfs.
	InInitramfs bool      `json:"in_initramfs,omitempty"`
	Run         string    `json:"run,omitempty"` // the apt run that kept it
	Time        time.Time `json:"time"`
	// PutBack is when it was put back into dkms's tree (zero: not yet),
	// Failed the version whose build failed or does not support the
	// kernel (what it stands in for), FailedLog that build's log.
	PutBack   time.Time `json:"put_back,omitzero"`
	Failed    string    `json:"failed,omitempty"`
	FailedLog string    `json:"failed_log,omitempty"`
	// OwnsSource: putting it back created /usr/src/M-V, no package ships
	// it, and dropping it removes it.
	OwnsSource bool `json:"owns_source,omitempty"`
}

// MV is the build's module version.
func (b KeptBuild) MV() MV { return MV{Module: b.Module, Version: b.Version} }

// LoadKept reads kept.json. A missing file (or a corrupt one, moved aside
// by Load) gives no kept builds, always with the current schema.
func (s *Store) LoadKept() (Kept, error) {
	kept := Kept{Schema: Schema}
	_, err := s.Load(KeptFile, &kept)
	kept.Schema = Schema
	return kept, err
}
