package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// The one exit-code function, command by command and error by error.
func TestExitCodes(t *testing.T) {
	trouble := fmt.Errorf("reading dkms tree: %w", os.ErrPermission)
	unsafe := fmt.Errorf("opening: %w", state.ErrUnsafe)
	lock := fmt.Errorf("recording: %w", state.ErrLockTimeout)
	usage := usageErr(errors.New("takes no arguments"))
	failures := errors.Join(errFailures, errReported)
	cases := []struct {
		command string
		err     error
		want    int
	}{
		{"status", nil, exitOK},
		{"status", failures, exitFailures},
		{"status", usage, exitUsage},
		{"status", unsafe, exitTrouble},
		{"status", trouble, exitTrouble},
		{"rebuild", failures, exitFailures},
		{"rebuild", lock, exitTrouble},
		{"rebuild", errReported, exitTrouble}, // a panic
		{"", usage, exitUsage},                // no command, unknown command
	}
	for h := range hooks {
		cases = append(cases,
			struct {
				command string
				err     error
				want    int
			}{h, nil, exitOK},
			struct {
				command string
				err     error
				want    int
			}{h, usage, exitUsage},
		)
		for _, err := range []error{trouble, unsafe, lock, errReported} {
			cases = append(cases, struct {
				command string
				err     error
				want    int
			}{h, err, exitOK})
		}
	}
	for _, tc := range cases {
		if got := exitCode(tc.command, tc.err); got != tc.want {
			t.Errorf("exitCode(%q, %v) = %d, want %d", tc.command, tc.err, got, tc.want)
		}
	}
}

// The README's exit status table is exitTable, row for row.
func TestREADMEExitTable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("| code | meaning |\n| --- | --- |\n")
	for _, e := range exitTable {
		fmt.Fprintf(&want, "| %d | %s |\n", e.code, e.meaning)
	}
	if !strings.Contains(string(data), want.String()) {
		t.Errorf("README.md lacks the exit status table; it must read:\n%s", want.String())
	}
}

// dkms-guard's own bugs must never fail apt: a panicking hook becomes one
// E: line and exit 0; a panicking person's command exits 3.
func TestGuardRecoversPanic(t *testing.T) {
	for _, tc := range []struct {
		command string
		want    int
	}{{"post-invoke", exitOK}, {"status", exitTrouble}} {
		var out bytes.Buffer
		ce := &cmdEnv{rep: report.New(&out)}
		err := ce.guard(func(*cli.Context) error { panic("boom") })(&cli.Context{Command: &cli.Command{Name: tc.command}})
		if !errors.Is(err, errReported) {
			t.Fatalf("err = %#v", err)
		}
		if got := exitCode(ce.command, err); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.command, got, tc.want)
		}
		if !strings.HasPrefix(out.String(), "E: dkms-guard: BUG: dkms-guard "+tc.command+" panicked: boom;") {
			t.Errorf("output %q", out.String())
		}
	}
}
