package dkms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Unsupported is dkms's exit status for "this module does not apply to this
// kernel" (prepare_build: die 77 on build_exclude).
const Unsupported = 77

// ErrNotFound means no dkms program is on PATH.
var ErrNotFound = errors.New("dkms not found on PATH")

// ExitError is a dkms run that did not succeed.
type ExitError struct {
	Code     int           // exit status, -1 when killed by a signal
	Signal   string        // the signal that killed it, if any
	TimedOut bool          // killed by dkms-guard after Timeout
	Timeout  time.Duration // the limit that applied
}

func (e *ExitError) Error() string {
	switch {
	case e.TimedOut:
		return fmt.Sprintf("timed out after %s, process group killed", e.Timeout)
	case e.Signal != "":
		return fmt.Sprintf("killed by signal %s", e.Signal)
	}
	return fmt.Sprintf("exit %d", e.Code)
}

// Runner runs the dkms program found on PATH by its bare name.
type Runner struct {
	Program string        // "dkms" unless a test says otherwise
	Timeout time.Duration // per run; 0 means no limit
}

// Install runs `dkms install -m M -v V -k K`, which builds first when
// needed, with its output going to out. The run gets its own process group
// so that a timeout kills make and the compiler too, not only dkms.
func (r Runner) Install(ctx context.Context, module, version, kernel string, out io.Writer) error {
	prog := r.Program
	if prog == "" {
		prog = "dkms"
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	// Arguments go straight to execve, never through a shell: a module name
	// with spaces or quotes stays one argument.
	cmd := exec.CommandContext(ctx, path, "install", "-m", module, "-v", version, "-k", kernel)
	cmd.Stdin = nil // hooks never read stdin: it may belong to debconf
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: a hung make below dkms must die too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		ee := &ExitError{Code: -1, Timeout: r.Timeout}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			ee.TimedOut = true
		} else {
			ee.Signal = "SIGKILL (dkms-guard was interrupted)"
		}
		return ee
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &ExitError{Code: -1, Signal: fmt.Sprintf("%d (%s)", int(ws.Signal()), ws.Signal())}
		}
		return &ExitError{Code: xe.ExitCode()}
	}
	return fmt.Errorf("running %s: %w", path, err)
}
