package program

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fake puts a shell script named name first on PATH.
func fake(t *testing.T, name, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestOutcomes(t *testing.T) {
	var out bytes.Buffer
	fake(t, "prog", `echo "args: $*"; echo oops >&2; exit 0`)
	if err := (Cmd{Name: "prog", Args: []string{"a b", "c"}, Out: &out}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "args: a b c\noops\n" {
		t.Errorf("output %q", got)
	}
	var errOut bytes.Buffer
	out.Reset()
	if err := (Cmd{Name: "prog", Out: &out, Err: &errOut}).Run(context.Background()); err != nil || errOut.String() != "oops\n" || strings.Contains(out.String(), "oops") {
		t.Errorf("stderr kept apart: %v %q %q", err, out.String(), errOut.String())
	}

	var xe *ExitError
	fake(t, "prog", "exit 77")
	if err := (Cmd{Name: "prog"}).Run(context.Background()); !errors.As(err, &xe) || xe.Code != 77 {
		t.Errorf("exit 77: %v", err)
	}
	fake(t, "prog", "kill -TERM $$")
	if err := (Cmd{Name: "prog"}).Run(context.Background()); !errors.As(err, &xe) || xe.Signal == "" || !strings.Contains(err.Error(), "signal 15") {
		t.Errorf("signal: %v", err)
	}
	if err := (Cmd{Name: "dkms-guard-no-such-program"}).Run(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing program: %v", err)
	}
}

// gone polls until pid is gone or a zombie: SIGKILL is delivered at once
// but dying takes a moment.
func gone(t *testing.T, pidFile string) {
	t.Helper()
	var data []byte
	for deadline := time.Now().Add(10 * time.Second); len(data) == 0; time.Sleep(20 * time.Millisecond) {
		data, _ = os.ReadFile(pidFile)
		if time.Now().After(deadline) {
			t.Fatal("the grandchild never wrote its pid")
		}
	}
	statFile := "/proc/" + strings.TrimSpace(string(data)) + "/stat"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(statFile)
		if err != nil || strings.Contains(string(stat), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild still running 5 s after the kill: %s", stat)
		}
	}
}

// A timeout kills the whole process group: a make below dkms must not
// outlive it, or apt would wait on its pipe forever.
func TestTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	fake(t, "prog", `sh -c 'echo $$ > `+pidFile+`; exec sleep 60' & wait`)
	err := (Cmd{Name: "prog", Timeout: 300 * time.Millisecond}).Run(context.Background())
	var xe *ExitError
	if !errors.As(err, &xe) || !xe.TimedOut {
		t.Fatalf("err = %v, want a timeout", err)
	}
	gone(t, pidFile)
}

// A program that leaves a background child behind does not leave it
// running: the group is killed when the leader exits.
func TestLeftoverChildKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	fake(t, "prog", `sh -c 'echo $$ > `+pidFile+`; exec sleep 60' >/dev/null 2>&1 & while [ ! -s `+pidFile+` ]; do sleep 0.01; done; exit 0`)
	if err := (Cmd{Name: "prog"}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone(t, pidFile)
}

// SIGKILL of dkms-guard itself: the build's group leader gets SIGKILL too
// (Pdeathsig), so dkms does not go on unrecorded. The test re-runs itself
// as the "dkms-guard" that is killed.
func TestLeaderDiesWithParent(t *testing.T) {
	if pidFile := os.Getenv("PROGRAM_TEST_PARENT"); pidFile != "" {
		fake(t, "prog", `echo $$ > `+pidFile+`; exec sleep 60`)
		(Cmd{Name: "prog"}).Run(context.Background())
		return
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	parent := exec.Command(os.Args[0], "-test.run=^TestLeaderDiesWithParent$")
	parent.Env = append(os.Environ(), "PROGRAM_TEST_PARENT="+pidFile)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if data, _ := os.ReadFile(pidFile); len(data) > 0 {
			if _, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never started")
		}
	}
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	gone(t, pidFile)
}

// A program that exits 0 but leaves a child holding its stdout (a
// daemonised helper) succeeded: the pipes are closed after WaitDelay, and
// the output says so.
func TestSuccessWithChildHoldingOutput(t *testing.T) {
	defer func(d time.Duration) { waitDelay = d }(waitDelay)
	waitDelay = 100 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "pid")
	fake(t, "prog", `echo started; sh -c 'echo $$ > `+pidFile+`; exec sleep 60' & while [ ! -s `+pidFile+` ]; do sleep 0.01; done; exit 0`)
	var out bytes.Buffer
	if err := (Cmd{Name: "prog", Out: &out}).Run(context.Background()); err != nil {
		t.Fatalf("err = %v, want success", err)
	}
	if !strings.Contains(out.String(), "started\n") || !strings.Contains(out.String(), "prog exited 0, but a process it left behind kept its output open") {
		t.Errorf("output %q", out.String())
	}
	gone(t, pidFile)
}
