// Package app wires dkms-guard's commands with urfave/cli v2 and owns the
// process: signals, the exit code, and the one place errors are printed.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/dpkg"
	"github.com/dkms-guard/dkms-guard/internal/guard"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/proc"
	"github.com/dkms-guard/dkms-guard/internal/report"
)

// DefaultTimeout bounds one module's build: a hung build must not hang apt forever.
const DefaultTimeout = 30 * time.Minute

// Main runs dkms-guard with args (os.Args) and returns the exit code. It
// does not call os.Exit, so every deferred cleanup (locks, temp files) runs.
func Main(args []string, version string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := report.New(os.Stderr)
	a := newApp(version, rep, os.Stdin, os.Stdout, os.Stderr)
	err := a.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var xe *exitError
	if errors.As(err, &xe) {
		if xe.err != nil {
			rep.Errorf("%v", xe.err)
		}
		return xe.code
	}
	rep.Errorf("%v", err)
	return exitTrouble
}

// cmdEnv is what every command action gets.
type cmdEnv struct {
	rep    *report.Reporter
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    *guard.Env
}

func newApp(version string, rep *report.Reporter, stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	ce := &cmdEnv{rep: rep, stdin: stdin, stdout: stdout, stderr: stderr}
	a := &cli.App{
		Name:      "dkms-guard",
		Usage:     "keep kernel upgrades working when DKMS modules fail to build",
		UsageText: "dkms-guard [--root DIR] [--timeout DURATION] COMMAND [ARGS...]",
		Version:   version,
		Description: `dkms-guard stands between dkms and the kernel packages on Debian and Ubuntu.
When a new kernel or its headers are installed, it builds every DKMS module
for that kernel one by one, and a module that fails to build becomes a
warning instead of a failed kernel package and a half-configured system.
Modules whose own packages were installed or upgraded in the same apt run
are still built, for every installed kernel with headers, and their
failures are reported as errors.

The hook commands are run by apt (apt-plan, pre-invoke, post-invoke), by the
diverted /usr/lib/dkms/dkms_autoinstaller (autoinstall) and by the kernel
hook directories (kernel-postinst, kernel-prerm). status and rebuild are for
people.

Messages go to standard error as "E: dkms-guard: ...", "W: dkms-guard: ..."
and "N: dkms-guard: ...". State lives in /var/lib/dkms-guard, build logs in
/var/log/dkms-guard/KERNEL/, and /var/lib/dkms-guard.notice exists while a
kernel lacks a module.

EXIT STATUS
   0  success; for the hooks also "done, module failures reported"
   1  status: a kernel lacks a module whose build failed;
      rebuild: a module did not build
   2  usage error
   3  dkms-guard cannot work (unsafe state directory, lock timeout); the
      hooks that run before or inside dpkg still exit 0 after the message,
      post-invoke exits 3

ENVIRONMENT
   DKMS_GUARD_ROOT     same as --root
   DKMS_GUARD_TIMEOUT  same as --timeout`,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "root",
				Usage:   "treat `DIR` as the file system root, like dpkg's --root (empty means /)",
				EnvVars: []string{"DKMS_GUARD_ROOT"},
				Value:   "/",
			},
			&cli.StringFlag{
				Name:    "timeout",
				Usage:   "give up on one module's build after `DURATION` (e.g. 45m; 0 for no limit), killing its whole process group",
				EnvVars: []string{"DKMS_GUARD_TIMEOUT"},
				Value:   DefaultTimeout.String(),
			},
		},
		Reader:                 stdin,
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: false,
		// urfave/cli would exit the process itself and print usage to stdout.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Before:         ce.before,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr(fmt.Errorf("unknown command %q; see dkms-guard --help", c.Args().First()))
			}
			cli.HelpPrinter(stderr, cli.AppHelpTemplate, c.App)
			return &exitError{code: exitUsage}
		},
		Commands: []*cli.Command{
			ce.autoinstallCommand(),
			ce.aptPlanCommand(),
			ce.preInvokeCommand(),
			ce.postInvokeCommand(),
			ce.kernelPostinstCommand(),
			ce.kernelPrermCommand(),
			ce.statusCommand(),
			ce.rebuildCommand(),
		},
	}
	for _, cmd := range a.Commands {
		cmd.OnUsageError = onUsageError
	}
	return a
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	name := "dkms-guard"
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return usageErr(fmt.Errorf("%v; see %s --help", err, name))
}

// before normalises the global options. A set-but-empty DKMS_GUARD_ROOT
// overrides the flag's default, so "" must mean "/" here.
func (ce *cmdEnv) before(c *cli.Context) error {
	root := c.String("root")
	if root == "" {
		root = "/"
	}
	if !filepath.IsAbs(root) {
		return usageErr(fmt.Errorf("--root %q is not an absolute path", root))
	}
	timeout := DefaultTimeout
	if s := strings.TrimSpace(c.String("timeout")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return usageErr(fmt.Errorf("--timeout %q is not a duration such as 30m or 1h", s))
		}
		timeout = d
	}
	p := paths.New(root)
	ce.env = &guard.Env{
		Paths:       p,
		Proc:        proc.Reader{Paths: p},
		Owners:      dpkg.Query{},
		DKMS:        dkms.Runner{Timeout: timeout},
		Report:      ce.rep,
		Arch:        machine(),
		Now:         time.Now,
		LockTimeout: 2 * time.Minute,
	}
	return nil
}

// hook runs fn as an apt or kernel hook: dkms-guard's own problems, even a
// panic, become an E: line and exit code onTrouble, never a crash.
func (ce *cmdEnv) hook(onTrouble int, fn func(c *cli.Context) error) cli.ActionFunc {
	return func(c *cli.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				ce.rep.Errorf("BUG: dkms-guard %s panicked: %v; the package operation goes on, please report this with %s",
					c.Command.Name, p, ce.crashLog(p))
				err = &exitError{code: onTrouble}
			}
		}()
		if err := fn(c); err != nil {
			var xe *exitError
			if errors.As(err, &xe) {
				return err // usage errors and deliberate exit codes
			}
			ce.rep.Errorf("%s: %v", c.Command.Name, err)
			return &exitError{code: onTrouble}
		}
		return nil
	}
}

// crashLog keeps a panic's stack for the bug report, in the log directory.
func (ce *cmdEnv) crashLog(p any) string {
	if ce.env == nil {
		return "its stack trace"
	}
	dir := ce.env.Paths.LogDir()
	name := filepath.Join(dir, fmt.Sprintf("crash-%d.txt", time.Now().Unix()))
	if os.MkdirAll(dir, 0o755) != nil {
		return "its stack trace"
	}
	if os.WriteFile(name, []byte(fmt.Sprintf("panic: %v\n\n%s", p, debug.Stack())), 0o644) != nil {
		return "its stack trace"
	}
	return ce.env.Paths.Rel(name)
}

// machine is uname -m, dkms's default $arch.
func machine() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range u.Machine {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// wantArgs checks the number of positional arguments.
func wantArgs(c *cli.Context, min, max int) error {
	if n := c.NArg(); n < min || n > max {
		return usageErr(fmt.Errorf("%s takes %s, got %d; see dkms-guard %s --help",
			c.Command.Name, argCount(min, max), n, c.Command.Name))
	}
	return nil
}

func argCount(min, max int) string {
	switch {
	case min == max && min == 0:
		return "no arguments"
	case min == max:
		return fmt.Sprintf("%d argument(s)", min)
	}
	return fmt.Sprintf("%d to %d arguments", min, max)
}
