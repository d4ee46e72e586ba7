package app

// The exit-code contract. It is stable: scripts and the README rely on it.
//
//	0  success; for the apt and kernel hooks also "finished, module
//	   failures reported": a hook never fails a package because of a module
//	1  status found a kernel lacking a module whose build failed, or
//	   rebuild could not install every module it tried
//	2  usage error: unknown command or flag, wrong arguments, non-v3 input
//	   to apt-plan is NOT one (it is reported and apt goes on)
//	3  dkms-guard itself cannot work: unsafe or unusable state directory,
//	   lock timeout, unreadable DKMS tree. The hooks that run inside dpkg
//	   (autoinstall, kernel-postinst, kernel-prerm) and the pre-dpkg apt
//	   hooks (pre-invoke, apt-plan) still exit 0 after their E: line, so
//	   that apt and dpkg go on; post-invoke, which runs after dpkg is done,
//	   exits 3 so that a misconfigured dkms-guard does not go unnoticed.
const (
	exitOK       = 0
	exitFailures = 1
	exitUsage    = 2
	exitTrouble  = 3
)

// exitError carries an exit code through urfave/cli to Main.
type exitError struct {
	code int
	err  error // already reported when nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }
