package app

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/report"
)

// dkms-guard's own bugs must never fail apt: a panicking hook becomes one
// E: line and the hook's exit code.
func TestHookRecoversPanic(t *testing.T) {
	var out bytes.Buffer
	ce := &cmdEnv{rep: report.New(&out)}
	action := ce.hook(exitOK, func(*cli.Context) error { panic("boom") })
	err := action(&cli.Context{Command: &cli.Command{Name: "post-invoke"}})
	var xe *exitError
	if !errors.As(err, &xe) || xe.code != exitOK || xe.err != nil {
		t.Fatalf("err = %#v", err)
	}
	if !strings.HasPrefix(out.String(), "E: dkms-guard: BUG: dkms-guard post-invoke panicked: boom;") {
		t.Errorf("output %q", out.String())
	}
}

func TestHookTurnsErrorsIntoExitCode(t *testing.T) {
	var out bytes.Buffer
	ce := &cmdEnv{rep: report.New(&out)}
	err := ce.hook(exitOK, func(*cli.Context) error { return errors.New("disk on fire") })(&cli.Context{Command: &cli.Command{Name: "pre-invoke"}})
	var xe *exitError
	if !errors.As(err, &xe) || xe.code != exitOK {
		t.Fatalf("err = %#v", err)
	}
	if out.String() != "E: dkms-guard: pre-invoke: disk on fire\n" {
		t.Errorf("output %q", out.String())
	}
}
