package app

import (
	"errors"
)

// The exit-code contract. It is stable: scripts rely on it, and exitCode is
// the only place a code is chosen. TestExitCodes pins it; --help and the
// man page show exitTable.
//
// The hooks (run by apt, dpkg and the kernel packages) never exit non-zero
// because of a module or of dkms-guard's own trouble: a non-zero hook
// fails the kernel package or makes apt report a finished upgrade as
// failed, which is worse than what stock dkms does. Their trouble is an E:
// line, and `dkms-guard status` (exit 3) keeps showing it. Only a wrong
// command line (a broken glue file, or a person) exits 2.
const (
	exitOK       = 0
	exitFailures = 1
	exitUsage    = 2
	exitTrouble  = 3
)

// exitTable is the contract in words, for --help and the man page.
var exitTable = []struct {
	code    int
	meaning string
}{
	{exitOK, "success; for the hooks also \"done, module failures and dkms-guard's own trouble reported\""},
	{exitFailures, "`status`: a kernel lacks a module whose build failed; `rebuild`: a module did not build"},
	{exitUsage, "usage error: unknown command or flag, wrong arguments, a bad option value given to `status` or `rebuild`"},
	{exitTrouble, "`status`, `rebuild`, `unpin` and `drop-kept` only: dkms-guard cannot work (unsafe state directory, lock timeout, unreadable DKMS tree; for `unpin`, a pin it could not remove; for `drop-kept`, a kept build it could not drop)"},
}

// hooks are the commands that run inside apt, dpkg or a kernel package.
var hooks = map[string]bool{
	"autoinstall": true, "apt-plan": true, "pre-invoke": true, "post-invoke": true,
	"kernel-preinst": true, "kernel-postinst": true, "kernel-prerm": true,
}

// errFailures means some module failed: status and rebuild exit 1.
var errFailures = errors.New("module failures")

// errReported means the error was already shown to the user.
var errReported = errors.New("reported")

// usageError is a wrong command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err: err} }

// exitCode maps what command returned to the process's exit code.
func exitCode(command string, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errFailures):
		return exitFailures
	case hooks[command]:
		return exitOK
	}
	return exitTrouble
}
