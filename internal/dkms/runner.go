package dkms

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// Unsupported is dkms's exit status for "this module does not apply to this
// kernel" (prepare_build: die 77 on build_exclude).
const Unsupported = 77

// Runner runs the dkms program found on PATH by its bare name, and depmod
// the way dkms runs it.
type Runner struct {
	Timeout time.Duration // per run; 0 means no limit
	// Root is the file system root depmod works on ("/" or "": the real one).
	Root string
}

// Build runs `dkms build -m M -v V -k K [-j N]` (makeJobs 0: dkms's own
// default, as stock dkms), with its output going to out; started gets its
// process group. A module already built for K is dkms's "skip", exit 0. A
// failure is a *program.ExitError (or wraps program.ErrNotFound); the
// whole process group (make, the compiler) dies on timeout.
func (r Runner) Build(ctx context.Context, module, version, kernel string, makeJobs int, out io.Writer, started func(pgid int)) error {
	return r.dkms(ctx, []string{"build", "-m", module, "-v", version, "-k", kernel}, makeJobs, out, started)
}

// Install runs `dkms install [--no-depmod] -m M -v V -k K [-j N]`, which
// builds first when needed (with make -j N; 0: dkms's default). noDepmod
// leaves depmod to the caller (Depmod).
func (r Runner) Install(ctx context.Context, module, version, kernel string, noDepmod bool, makeJobs int, out io.Writer, started func(pgid int)) error {
	args := []string{"install"}
	if noDepmod {
		args = append(args, "--no-depmod")
	}
	return r.dkms(ctx, append(args, "-m", module, "-v", version, "-k", kernel), makeJobs, out, started)
}

// dkms runs dkms with args and, when makeJobs is set, -j makeJobs.
func (r Runner) dkms(ctx context.Context, args []string, makeJobs int, out io.Writer, started func(pgid int)) error {
	if makeJobs > 0 {
		args = append(args, "-j", strconv.Itoa(makeJobs))
	}
	return program.Cmd{Name: "dkms", Args: args, Timeout: r.Timeout, Out: out, Started: started}.Run(ctx)
}

// Depmod runs depmod for kernel as dkms's do_depmod does: `depmod -a K`,
// with -F and the kernel's System.map when there is one. Like dkms since
// 3.0.13 it does nothing when /lib/modules/K/modules.dep is missing (the
// headers are installed, the image is not: its postinst runs depmod).
func (r Runner) Depmod(ctx context.Context, kernel string, out io.Writer) error {
	p := paths.New(r.Root)
	if !paths.Exists(p.ModulesDep(kernel)) {
		return nil
	}
	args := []string{"-a"}
	if r.Root != "" && r.Root != "/" {
		args = append(args, "-b", r.Root)
	}
	args = append(args, kernel)
	if m := p.SystemMap(kernel); paths.Exists(m) {
		args = append(args, "-F", m)
	}
	return program.Cmd{Name: "depmod", Args: args, Timeout: r.Timeout, Out: out}.Run(ctx)
}

// maxProgram bounds reading the dkms script (about 150 kB).
const maxProgram = 4 << 20

// HasNoDepmod tells whether the dkms program at name (the script, read,
// not run) accepts --no-depmod; every dkms since 2.2 does, but a dkms
// that is not a script or cannot be read is taken not to.
func HasNoDepmod(name string) bool {
	data, err := file.ReadRegular(name, maxProgram)
	return err == nil && bytes.Contains(data, []byte("--no-depmod)"))
}

// Bypassing lists dkms's kernel hooks (header_postinst.d, postinst.d)
// that do not run /usr/lib/dkms/dkms_autoinstaller, through which
// dkms-guard gets in: every dkms from 2.8 to 3.4 execs it, and a dkms
// that stops doing so would build without dkms-guard, unnoticed. Read,
// not run; a missing hook runs nothing and is not listed.
func Bypassing(p paths.Paths) []string {
	var out []string
	for _, dir := range []string{"header_postinst", "postinst"} {
		name := filepath.Join(p.KernelHookDir(dir), "dkms")
		data, err := file.ReadRegular(name, 64<<10)
		if err != nil {
			continue
		}
		if !bytes.Contains(data, []byte("/usr/lib/dkms/dkms_autoinstaller")) {
			out = append(out, p.Rel(name))
		}
	}
	return out
}

// maxFramework bounds one framework.conf file.
const maxFramework = 1 << 20

// FrameworkJobs is parallel_jobs from /etc/dkms/framework.conf and
// framework.conf.d/*.conf (dkms's order: the last one set wins), when the
// installed dkms takes it there (3.1 and later list it among the framework
// variables; 3.0 takes only -j): the administrator's make -j, which builds
// side by side must not exceed together. A value dkms-guard cannot read
// for certain gives 1 (one build at a time, as stock dkms); 0 or unset
// gives ok false (no limit: dkms's default is -j nproc).
func FrameworkJobs(p paths.Paths) (jobs int, ok bool) {
	script, err := file.ReadRegular(p.DKMSProgram(), maxProgram)
	if err != nil {
		return 0, false
	}
	_, list, found := bytes.Cut(script, []byte(`dkms_framework_nonsigning_variables="`))
	list, _, _ = bytes.Cut(list, []byte(`"`))
	if !found || !slices.Contains(strings.Fields(string(list)), "parallel_jobs") {
		return 0, false
	}
	files := []string{filepath.Join(p.DKMSConfDir(), "framework.conf")}
	more, _ := filepath.Glob(filepath.Join(p.DKMSConfDir(), "framework.conf.d", "*.conf"))
	all := shellconf.New()
	for _, name := range append(files, more...) {
		data, err := file.ReadRegular(name, maxFramework)
		if err != nil {
			continue // dkms sources only what is there and readable
		}
		v, err := shellconf.Parse(bytes.NewReader(data), name)
		if err != nil {
			v = shellconf.Opaque("cannot be parsed")
		}
		all.Merge(v)
	}
	if !all.Known("parallel_jobs") {
		return 1, true
	}
	val := all.Get("parallel_jobs")
	if val == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(val))
	switch {
	case err != nil || n < 0:
		return 1, true
	case n == 0:
		return 0, false // dkms then runs make -j: no limit
	}
	return n, true
}
