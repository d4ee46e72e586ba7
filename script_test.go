package main_test

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dkms-guard/dkms-guard/internal/app"
)

var update = flag.Bool("u", false, "update testscript files with the actual output of cmp")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dkms-guard": func() { os.Exit(app.Main(os.Args, "test")) },
	})
}

// fakeDKMS is the dkms every scenario gets unless it brings its own
// bin/dkms; its comment lists the knobs a scenario sets in $WORK/dkms.knobs.
//
//go:embed testdata/fake/dkms
var fakeDKMS []byte

// aptStart is the start time written into the fake /proc entry of the
// process that runs the scripts' commands: it plays apt.
const aptStart = "4242"

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Setup:               setup,
		Condition:           condition,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"dkms-add":       cmdDKMSAdd,
			"dkms-installed": cmdDKMSInstalled,
			"fake-proc":      cmdFakeProc,
		},
	})
}

// condition adds [root]: the scenario runs as root (one switches to an
// unprivileged user, which only root can).
func condition(cond string) (bool, error) {
	if cond == "root" {
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// setup makes every script hermetic: its own root, its own PATH first,
// tripwires for the programs dkms-guard runs, and a fake /proc.
func setup(env *testscript.Env) error {
	root := filepath.Join(env.WorkDir, "root")
	bin := filepath.Join(env.WorkDir, "bin")
	env.Setenv("DKMS_GUARD_ROOT", root)
	env.Setenv("DKMS_GUARD_TIMEOUT", "")
	// One build at a time unless a scenario says otherwise: the fakes'
	// calls then come in a stable order.
	env.Setenv("DKMS_GUARD_JOBS", "1")
	env.Setenv("APT_HOOK_INFO_FD", "")
	env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
	env.Setenv("ARCH", arch())
	// The repository, for the scenarios that run its shell scripts
	// (update-motd.d) under the fake root.
	if wd, err := os.Getwd(); err == nil {
		env.Setenv("REPO", wd)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	// A forgotten fake must never reach a real program: tests may run as
	// root. dkms gets the shared fake, the others a tripwire; a scenario's
	// own bin/PROG (already extracted) wins.
	fakes := map[string][]byte{"dkms": fakeDKMS}
	for _, prog := range []string{"dpkg-query", "depmod"} {
		fakes[prog] = fmt.Appendf(nil, "#!/bin/sh\necho \"tripwire: unexpected %s $*\" >&2\nexit 99\n", prog)
	}
	for prog, data := range fakes {
		p := filepath.Join(bin, prog)
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, data, 0o755); err != nil {
				return err
			}
		}
	}
	ents, err := os.ReadDir(bin)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Chmod(filepath.Join(bin, e.Name()), 0o755); err != nil {
			return err
		}
	}
	// The scripts' commands are children of this process: it is "apt".
	pid := os.Getpid()
	env.Setenv("APT_PID", strconv.Itoa(pid))
	if err := writeProc(root, pid, "apt-get", aptStart, 1, nil); err != nil {
		return err
	}
	files := map[string]string{
		"proc/sys/kernel/random/boot_id": "boot-1\n",
		"proc/sys/kernel/osrelease":      "6.1.0-47-amd64\n",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if _, err := os.Stat(p); err == nil {
			continue // the script brought its own
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeProc fakes /proc/PID/stat, and /proc/PID/cmdline when argv is given.
func writeProc(root string, pid int, comm, start string, ppid int, argv []string) error {
	dir := filepath.Join(root, "proc", strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Fields 3.. of /proc/PID/stat; field 22 (starttime) is the 20th after ")".
	stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %s 0 0\n", pid, comm, ppid, pid, pid, start)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		return err
	}
	if argv == nil {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644)
}

// fake-proc PID COMM START [PPID [ARGV...]] | fake-proc -rm PID: make or
// end a fake process (parent 1 unless given; a command line when given).
func cmdFakeProc(ts *testscript.TestScript, neg bool, args []string) {
	root := ts.Getenv("DKMS_GUARD_ROOT")
	if len(args) == 2 && args[0] == "-rm" {
		ts.Check(os.RemoveAll(filepath.Join(root, "proc", args[1])))
		return
	}
	if len(args) < 3 {
		ts.Fatalf("usage: fake-proc PID COMM START [PPID [ARGV...]] | fake-proc -rm PID")
	}
	pid, err := strconv.Atoi(args[0])
	ts.Check(err)
	ppid := 1
	if len(args) > 3 {
		ppid, err = strconv.Atoi(args[3])
		ts.Check(err)
	}
	var argv []string
	if len(args) > 4 {
		argv = args[4:]
	}
	ts.Check(writeProc(root, pid, args[1], args[2], ppid, argv))
}

// dkms-add M V: what `dkms add` leaves: /var/lib/dkms/M/V/source -> /usr/src/M-V.
func cmdDKMSAdd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: dkms-add MODULE VERSION")
	}
	root := ts.Getenv("DKMS_GUARD_ROOT")
	src := filepath.Join(root, "usr/src", args[0]+"-"+args[1])
	ts.Check(os.MkdirAll(src, 0o755))
	dir := filepath.Join(root, "var/lib/dkms", args[0], args[1])
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Check(os.Symlink(src, filepath.Join(dir, "source")))
}

// dkms-installed M V K: what `dkms install` leaves: M/kernel-K-ARCH -> V/K/ARCH.
func cmdDKMSInstalled(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: dkms-installed MODULE VERSION KERNEL")
	}
	root := ts.Getenv("DKMS_GUARD_ROOT")
	m, v, k := args[0], args[1], args[2]
	ts.Check(os.MkdirAll(filepath.Join(root, "var/lib/dkms", m, v, k, arch(), "module"), 0o755))
	link := filepath.Join(root, "var/lib/dkms", m, "kernel-"+k+"-"+arch())
	os.Remove(link)
	ts.Check(os.Symlink(filepath.Join(v, k, arch()), link))
}

func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return runtime.GOARCH
}
