package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/apthook"
	"github.com/dkms-guard/dkms-guard/internal/build"
	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/dpkg"
	"github.com/dkms-guard/dkms-guard/internal/host"
	"github.com/dkms-guard/dkms-guard/internal/initramfs"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/kernelhook"
	"github.com/dkms-guard/dkms-guard/internal/kmod"
)

// keptLog is the log of keeping and putting back, in the log directory.
const keptLog = "kept.log"

// keptBuilds builds what keeps the last working builds. It reads the
// settings: the hooks call it only when something may be kept, put back
// or dropped.
func (ce *cmdEnv) keptBuilds() *keep.Keeper {
	return &keep.Keeper{
		Paths:     ce.paths,
		DKMS:      dkms.Runner{Timeout: ce.timeout, Root: ce.paths.Root},
		Initramfs: initramfs.Tool{},
		Checker: kmod.Checker{Paths: ce.paths, Timeout: ce.timeout, Note: func(msg string) {
			ce.rep.Notef("%s", msg)
		}},
		Report:   ce.rep,
		Now:      time.Now,
		Settings: ce.config(),
		Critical: ce.critical,
		Owners:   dpkg.Query{},
		Log:      &appendLog{ce: ce, name: keptLog},
		LogName:  ce.paths.Rel(filepath.Join(ce.paths.LogDir(), keptLog)),
	}
}

// The hooks' keepers, built when first needed.
func (ce *cmdEnv) aptKeeper() apthook.Keeper       { return ce.keptBuilds() }
func (ce *cmdEnv) kernelKeeper() kernelhook.Keeper { return ce.keptBuilds() }

// critical tells whether module is boot-critical for kernel as the boot
// decision says (critical.Finder, the running kernel's initramfs as the
// reference): putting it back then updates kernel's initramfs even where
// it did not hold the module.
func (ce *cmdEnv) critical(ctx context.Context, kernel, module string) bool {
	tree, err := dkms.ReadTree(ce.paths.DKMSTree())
	if err != nil {
		return false
	}
	f := critical.Finder{Paths: ce.paths, Initramfs: initramfs.Tool{}, Arch: host.Machine(), Report: ce.rep}
	built := critical.Built{module: f.Builds(tree, kernel)[module]}
	_, ok := f.Find(ctx, built, ce.config(), ce.host().Release())[module]
	return ok
}

// appendLog appends to a file in the log directory, opened at the first
// write (without following a link planted there); a log that cannot be
// written is one warning, and the output is dropped.
type appendLog struct {
	ce   *cmdEnv
	name string
	once sync.Once
	f    *os.File
}

func (l *appendLog) Write(p []byte) (int, error) {
	l.once.Do(func() {
		root, err := build.OpenLogDir(l.ce.paths)
		if err == nil {
			defer root.Close()
			l.f, err = root.OpenFile(l.name, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o644)
		}
		if err != nil {
			l.ce.rep.Warnf("not logging to %s: %v", l.ce.paths.Rel(filepath.Join(l.ce.paths.LogDir(), l.name)), err)
		}
	})
	if l.f == nil {
		return len(p), nil
	}
	if _, err := l.f.Write(p); err != nil {
		return 0, fmt.Errorf("writing %s: %w", l.ce.paths.Rel(filepath.Join(l.ce.paths.LogDir(), l.name)), err)
	}
	return len(p), nil
}

var _ io.Writer = (*appendLog)(nil)
