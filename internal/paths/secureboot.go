package paths

import "path/filepath"

// EFIDir exists when the machine booted through UEFI: without it there is
// no Secure Boot to ask mokutil about.
func (p Paths) EFIDir() string { return p.join("sys/firmware/efi") }

// FrameworkConfs are dkms's framework files in the order dkms sources them
// (read_framework_conf): framework.conf, then framework.conf.d/*.conf.
func (p Paths) FrameworkConfs() []string {
	more, _ := filepath.Glob(filepath.Join(p.DKMSConfDir(), "framework.conf.d", "*.conf"))
	return append([]string{filepath.Join(p.DKMSConfDir(), "framework.conf")}, more...)
}

// UbuntuMOKCert is the certificate dkms signs with on Ubuntu when no
// signing key is configured (update-secureboot-policy's key).
func (p Paths) UbuntuMOKCert() string { return p.join("var/lib/shim-signed/mok/MOK.der") }
