// Package program runs the external programs dkms-guard needs (dkms,
// dpkg-query, lsinitramfs, update-initramfs, update-grub, bootctl), all
// the same careful way: found on PATH by bare name, never through a shell,
// stdin closed (hooks may run under debconf), in a process group of its
// own that dies as a whole on timeout, on cancellation and with
// dkms-guard itself (Pdeathsig), with its output bounded.
package program

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// errTimeout is the cause of a run's own timeout, told apart from the
// caller's deadlines and cancellations.
var errTimeout = errors.New("timeout")

// waitDelay is how long Run waits, after the program exited, for its
// output pipes to close: a daemonised child may hold them for ever.
var waitDelay = 5 * time.Second

// ErrNotFound means the program is not on PATH.
var ErrNotFound = errors.New("not found on PATH")

// ExitError is a run that did not succeed.
type ExitError struct {
	Program  string
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

// Cmd is one run of a program.
type Cmd struct {
	Name    string        // found on PATH
	Args    []string      // passed as they are, never through a shell
	Timeout time.Duration // 0: none (the context still applies)
	Out     io.Writer     // stdout, and stderr too unless Err is set; nil discards
	Err     io.Writer     // stderr, when it must not mix with the output
	Env     []string      // extra VAR=value, added to dkms-guard's environment
	In      io.Reader     // stdin (sendmail's message); nil: closed
	// Started, if set, gets the pid (and process group) once it runs.
	Started func(pid int)
}

// Run runs c and waits for it and its whole process group.
func (c Cmd) Run(ctx context.Context) error {
	path, err := exec.LookPath(c.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Name, ErrNotFound)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, errTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, path, c.Args...)
	cmd.Stdin = c.In
	out := c.Out
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout = out
	cmd.Stderr = out
	if c.Err != nil {
		cmd.Stderr = c.Err
	}
	if c.Env != nil {
		cmd.Env = append(cmd.Environ(), c.Env...)
	}
	// A group of its own, so that a timeout kills make and the compiler
	// too; Pdeathsig so that the group leader dies with dkms-guard even
	// when dkms-guard is SIGKILLed (its own children are killed through
	// the group by the Cancel below, or die when their parent does).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	err = cmd.Start()
	if err == nil {
		if c.Started != nil {
			c.Started(cmd.Process.Pid)
		}
		err = cmd.Wait()
	}
	if cmd.Process != nil {
		// Whatever the leader did, nothing of its group outlives the run.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0; a child it left (a daemonised helper) held its
		// output open until WaitDelay closed it. The run succeeded.
		fmt.Fprintf(out, "dkms-guard: %s exited 0, but a process it left behind kept its output open; closed after %s\n", c.Name, waitDelay)
		err = nil
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		ee := &ExitError{Program: c.Name, Code: -1, Timeout: c.Timeout}
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errTimeout):
			ee.TimedOut = true
		case cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded):
			ee.Signal = "SIGKILL (" + cause.Error() + ")"
		default:
			ee.Signal = "SIGKILL (dkms-guard was interrupted)"
		}
		return ee
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &ExitError{Program: c.Name, Code: -1, Signal: fmt.Sprintf("%d (%s)", int(ws.Signal()), ws.Signal())}
		}
		return &ExitError{Program: c.Name, Code: xe.ExitCode()}
	}
	return fmt.Errorf("running %s: %w", path, err)
}

// Capped keeps at most Max bytes of a program's output and drops the rest,
// so a misbehaving program cannot make dkms-guard grow without bound.
type Capped struct {
	buf     bytes.Buffer
	Max     int
	dropped bool
}

func (c *Capped) Write(p []byte) (int, error) {
	if len(p) > c.Max-c.buf.Len() {
		c.dropped = true
	}
	if room := c.Max - c.buf.Len(); room > 0 {
		if len(p) <= room {
			c.buf.Write(p)
		} else {
			c.buf.Write(p[:room])
		}
	}
	return len(p), nil
}

// Bytes is what was kept.
func (c *Capped) Bytes() []byte { return c.buf.Bytes() }

// Dropped tells whether output past Max was dropped: what was kept is not all.
func (c *Capped) Dropped() bool { return c.dropped }

// String is what was kept.
func (c *Capped) String() string { return c.buf.String() }
