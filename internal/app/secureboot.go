package app

import (
	"context"
	"fmt"
	"io"

	"github.com/dkms-guard/dkms-guard/internal/results"
	"github.com/dkms-guard/dkms-guard/internal/secureboot"
)

// secureBoot is what mokutil says, asked once per process: the notice,
// the summary and status all show it.
func (ce *cmdEnv) secureBoot(ctx context.Context) secureboot.Status {
	if ce.sb == nil {
		s := secureboot.Checker{Paths: ce.paths, Mokutil: secureboot.Tool{}}.Check(ctx)
		ce.sb = &s
	}
	return *ce.sb
}

// secureBootLines are the lines about dkms's signing key, while some
// kernel has a DKMS module that cannot load for want of it.
func (ce *cmdEnv) secureBootLines(ctx context.Context, view []results.Kernel) []string {
	built := false
	for _, k := range view {
		built = built || len(k.Installed) > 0
	}
	return ce.secureBoot(ctx).Lines(built)
}

// printLines writes status's Secure Boot section, nothing when all is well.
func printLines(w io.Writer, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nSecure Boot:")
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
