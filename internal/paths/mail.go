package paths

// Hostname is the machine's host name, which dkms-guard's mail names (as
// unattended-upgrades' does).
func (p Paths) Hostname() string { return p.join("proc/sys/kernel/hostname") }
