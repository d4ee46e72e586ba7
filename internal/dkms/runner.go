package dkms

import (
	"context"
	"io"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Unsupported is dkms's exit status for "this module does not apply to this
// kernel" (prepare_build: die 77 on build_exclude).
const Unsupported = 77

// Runner runs the dkms program found on PATH by its bare name.
type Runner struct {
	Timeout time.Duration // per run; 0 means no limit
}

// Install runs `dkms install -m M -v V -k K`, which builds first when
// needed, with its output going to out; started gets its process group.
// A failure is a *program.ExitError (or wraps program.ErrNotFound); the
// whole process group (make, the compiler) dies on timeout.
func (r Runner) Install(ctx context.Context, module, version, kernel string, out io.Writer, started func(pgid int)) error {
	return program.Cmd{
		Name:    "dkms",
		Args:    []string{"install", "-m", module, "-v", version, "-k", kernel},
		Timeout: r.Timeout,
		Out:     out,
		Started: started,
	}.Run(ctx)
}
