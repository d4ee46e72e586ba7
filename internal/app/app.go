// Package app wires dkms-guard's commands with urfave/cli v2 and owns the
// process: signals, the exit code (exit.go), and the one place errors are
// printed. Each command lives in its own file and builds the few objects it
// needs from the root; nothing below this package knows about the CLI.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/boot"
	"github.com/dkms-guard/dkms-guard/internal/bootloader"
	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/initramfs"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/secureboot"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// DefaultTimeout bounds one module's build: a hung build must not hang apt forever.
const DefaultTimeout = 30 * time.Minute

// Main runs dkms-guard with args (os.Args) and returns the exit code. It
// does not call os.Exit, so every deferred cleanup (locks, temp files) runs.
func Main(args []string, version string) int {
	// Every signal that would end the process ends it through the
	// context instead, so locks are released and the build's process
	// group is killed; SIGQUIT gets no Go stack dump.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer stop()
	ce := &cmdEnv{rep: report.New(os.Stderr), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	err := newApp(version, ce).RunContext(ctx, args)
	var ue *usageError
	if errors.Is(err, state.ErrUnusable) {
		err = errors.Join(err, errReported) // said once, as a W: line, by state.Open
	}
	if err != nil && !errors.Is(err, errReported) {
		if hooks[ce.command] && !errors.As(err, &ue) {
			ce.rep.Errorf("%s: %v", ce.command, err)
		} else {
			ce.rep.Errorf("%v", err)
		}
	}
	return exitCode(ce.command, err)
}

// ignorePipe keeps the process alive when stdout or stderr is a pipe whose
// reader went away (apt ... 2>&1 | head): Go dies of a SIGPIPE raised by a
// write to fd 1 or 2 unless the signal is notified. The write then fails
// with EPIPE and the hook goes on to record its results. Notify, not
// signal.Ignore: an ignored signal stays ignored in dkms and make, a
// notified one is reset for them. Every command that builds or writes
// state needs it; status, which only reads, dies quietly of SIGPIPE like
// any Unix filter (status --json | head).
func ignorePipe() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// cmdEnv is what every command action gets: the streams, the reporter,
// and the normalised global options.
type cmdEnv struct {
	rep     *report.Reporter
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	command string // the command being run, for the exit code
	paths   paths.Paths
	timeout time.Duration
	// jobs is --jobs or DKMS_GUARD_JOBS when given (jobsSet): builds at
	// once, 0 for auto.
	jobs     int
	jobsSet  bool
	settings *config.Settings // read once, by config()

	// sb is what mokutil says, asked once, by secureBoot().
	sb *secureboot.Status
}

func newApp(version string, ce *cmdEnv) *cli.App {
	a := &cli.App{
		Name:        "dkms-guard",
		Usage:       "keep kernel upgrades working when DKMS modules fail to build",
		UsageText:   "dkms-guard [--root DIR] [--timeout DURATION] [--jobs N] COMMAND [ARGS...]",
		Version:     version,
		Description: overview + "\n\n" + exitHelp() + "\n\n" + envHelp() + "\n\nFiles, examples: dkms-guard(8).",
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
			&cli.StringFlag{
				Name: "jobs",
				Usage: "build up to `N` modules at once (1 to 64, or auto: as many as CPUs, at most 4, " +
					"each with make -j CPUs/N rounded up, plus one); overrides JOBS in /etc/default/dkms-guard; 1 builds as stock dkms does",
				EnvVars: []string{"DKMS_GUARD_JOBS"},
			},
		},
		Reader:                 ce.stdin,
		Writer:                 ce.stdout,
		ErrWriter:              ce.stderr,
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
			cli.HelpPrinter(ce.stderr, cli.AppHelpTemplate, c.App)
			return usageErr(errReported)
		},
		Commands: []*cli.Command{
			ce.autoinstallCommand(),
			ce.aptPlanCommand(),
			ce.preInvokeCommand(),
			ce.postInvokeCommand(),
			ce.kernelPreinstCommand(),
			ce.kernelPostinstCommand(),
			ce.kernelPrermCommand(),
			ce.statusCommand(),
			ce.rebuildCommand(),
			ce.unpinCommand(),
			ce.dropKeptCommand(),
		},
	}
	for _, cmd := range a.Commands {
		cmd.OnUsageError = onUsageError
		cmd.Action = ce.guard(cmd.Action)
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
// overrides the flag's default, so "" must mean "/" here. A bad timeout
// fails the commands people type, but only warns in a hook: inside a
// kernel postinst, exit 2 would fail the package.
func (ce *cmdEnv) before(c *cli.Context) error {
	ce.command = c.Args().First()
	if ce.command != "status" {
		ignorePipe()
	}
	root := c.String("root")
	if root == "" {
		root = "/"
	}
	if !filepath.IsAbs(root) {
		return usageErr(fmt.Errorf("--root %q is not an absolute path", root))
	}
	ce.paths = paths.New(root)
	ce.timeout = DefaultTimeout
	if s := strings.TrimSpace(c.String("timeout")); s != "" {
		d, err := time.ParseDuration(s)
		switch {
		case err == nil && d >= 0:
			ce.timeout = d
		case hooks[ce.command]:
			ce.rep.Warnf("--timeout or DKMS_GUARD_TIMEOUT %q is not a duration such as 30m or 1h; using %s", s, DefaultTimeout)
		default:
			return usageErr(fmt.Errorf("--timeout %q is not a duration such as 30m or 1h", s))
		}
	}
	if c.IsSet("jobs") && strings.TrimSpace(c.String("jobs")) != "" {
		n, err := config.ParseJobs(c.String("jobs"))
		switch {
		case err == nil:
			ce.jobs, ce.jobsSet = n, true
		case hooks[ce.command]:
			ce.rep.Warnf("--jobs or DKMS_GUARD_JOBS: %v; using the configuration's JOBS", err)
		default:
			return usageErr(fmt.Errorf("--jobs %v", err))
		}
	}
	return nil
}

// config is /etc/default/dkms-guard, read once: its warnings are said once.
func (ce *cmdEnv) config() config.Settings {
	if ce.settings == nil {
		s := config.Load(ce.paths, ce.rep)
		ce.settings = &s
	}
	return *ce.settings
}

// guard runs a command's action: dkms-guard's own bugs, even a panic,
// become an E: line and the command's exit code (0 for a hook), never a
// crash inside dpkg.
func (ce *cmdEnv) guard(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) (err error) {
		ce.command = c.Command.Name
		defer func() {
			if p := recover(); p != nil {
				ce.rep.Errorf("BUG: dkms-guard %s panicked: %v; the package operation goes on, please report this with %s",
					c.Command.Name, p, ce.crashLog(p))
				err = errReported
			}
		}()
		return action(c)
	}
}

// crashLog keeps a panic's stack for the bug report, in the log
// directory, without following a link planted there.
func (ce *cmdEnv) crashLog(p any) string {
	fallback := "its stack trace"
	if ce.paths.Root == "" {
		return fallback
	}
	root, err := build.OpenLogDir(ce.paths)
	if err != nil {
		return fallback
	}
	defer root.Close()
	name := fmt.Sprintf("crash-%d-%d.txt", time.Now().Unix(), os.Getpid())
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fallback
	}
	_, werr := fmt.Fprintf(f, "panic: %v\n\n%s", p, debug.Stack())
	if cerr := f.Close(); werr != nil || cerr != nil {
		return fallback
	}
	return ce.paths.Rel(filepath.Join(ce.paths.LogDir(), name))
}

// The objects the commands use, each built from the root and the options.

func (ce *cmdEnv) host() host.Host { return host.Host{Paths: ce.paths} }

func (ce *cmdEnv) builder() *build.Builder {
	b := &build.Builder{
		Paths:  ce.paths,
		DKMS:   dkms.Runner{Timeout: ce.timeout, Root: ce.paths.Root},
		Report: ce.rep,
		Arch:   host.Machine(),
		Now:    time.Now,
		Tune: func() (t build.Tuning) {
			jobs := ce.config().Jobs
			if ce.jobsSet {
				jobs = ce.jobs
			}
			t.Parallel = build.Share(jobs, runtime.NumCPU())
			if total, ok := dkms.FrameworkJobs(ce.paths); ok {
				t.Parallel = t.Parallel.Within(total)
			}
			// One at a time is exactly stock dkms: depmod after each
			// install, and a failed depmod rolls the module back.
			t.NoDepmod = t.Parallel.Builds > 1 && dkms.HasNoDepmod(ce.paths.DKMSProgram())
			return t
		},
	}
	if hooks[ce.command] {
		// A hook must not hang a package's postinst behind a long rebuild
		// forever: past three build timeouts it builds without the lock.
		b.LockWait = 3 * ce.timeout
	}
	return b
}

func (ce *cmdEnv) recorder(b *build.Builder) *results.Recorder {
	return &results.Recorder{Paths: ce.paths, Machine: ce.host(), Chooser: b, Report: ce.rep, Now: time.Now, Settings: ce.config}
}

// keeper keeps the boot entry; hookKernel is the kernel a kernel hook runs
// for ("" otherwise). The hooks' parent is run-parts when dkms-guard runs
// from /etc/kernel/*.d.
func (ce *cmdEnv) keeper(hookKernel string) *boot.Keeper {
	h := ce.host()
	return &boot.Keeper{
		Paths:     ce.paths,
		Finder:    critical.Finder{Paths: ce.paths, Initramfs: initramfs.Tool{}, Arch: host.Machine(), Report: ce.rep},
		Initramfs: initramfs.Tool{},
		Detect: func(ctx context.Context) bootloader.Loader {
			return bootloader.Detect(ctx, ce.paths, ce.stderr)
		},
		Report:     ce.rep,
		Release:    h.Release(),
		HookDir:    h.HookDir(os.Getppid()),
		HookKernel: hookKernel,
		Log:        ce.stderr,
		Now:        time.Now,
		Settings:   ce.config,
		Notes:      ce.secureBootLines,
	}
}

// warnBypassed says when dkms's kernel hooks no longer go through the
// diverted dkms_autoinstaller (a dkms that changed them): then dkms builds
// there without dkms-guard.
func (ce *cmdEnv) warnBypassed() {
	for _, h := range dkms.Bypassing(ce.paths) {
		ce.rep.Warnf("%s does not run /usr/lib/dkms/dkms_autoinstaller: dkms builds there without dkms-guard, and a failing module fails the kernel package as it would without dkms-guard; please report this with your dkms version", h)
	}
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
