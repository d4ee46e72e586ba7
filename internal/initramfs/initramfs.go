// Package initramfs runs initramfs-tools: lsinitramfs to see which kernel
// modules an initramfs carries, update-initramfs to rebuild one after a
// boot-critical module was built for its kernel. Stock dkms (3.0.10) does
// not rebuild the initramfs when a module is built after the kernel's
// own postinst, e.g. from the headers' hook; dkms-guard must, before it
// lets that kernel become the default again.
package initramfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Tool runs initramfs-tools' programs, found on PATH.
type Tool struct{}

// listTimeout bounds lsinitramfs: it decompresses the image (seconds).
// A variable only so that a test can see the bound applied.
var listTimeout = 2 * time.Minute

// updateTimeout bounds update-initramfs: it runs every initramfs hook.
// A variable only so that a test can see the bound applied.
var updateTimeout = 10 * time.Minute

// maxListing bounds lsinitramfs's output (a few thousand paths).
const maxListing = 16 << 20

// List returns the paths inside image (lsinitramfs IMAGE).
func (Tool) List(ctx context.Context, image string) ([]string, error) {
	out := &program.Capped{Max: maxListing}
	errOut := &program.Capped{Max: 64 << 10}
	if err := (program.Cmd{Name: "lsinitramfs", Args: []string{image}, Timeout: listTimeout, Out: out, Err: errOut}).Run(ctx); err != nil {
		return nil, fmt.Errorf("lsinitramfs %s: %w: %s", image, err, bytes.TrimSpace(errOut.Bytes()))
	}
	if out.Dropped() {
		// A cut listing would make the modules past the cut look absent
		// from the initramfs, hence not boot-critical: say so instead.
		return nil, fmt.Errorf("lsinitramfs %s: its listing is over %d bytes", image, maxListing)
	}
	var paths []string
	// Every line, however long: a bufio.Scanner would stop, silently, at
	// the first line over 64 KiB.
	for line := range strings.Lines(out.String()) {
		paths = append(paths, strings.TrimSuffix(line, "\n"))
	}
	return paths, nil
}

// Update rebuilds kernel's initramfs (update-initramfs -u -k KERNEL), with
// its output going to out.
func (Tool) Update(ctx context.Context, kernel string, out io.Writer) error {
	if err := (program.Cmd{Name: "update-initramfs", Args: []string{"-u", "-k", kernel}, Timeout: updateTimeout, Out: out}).Run(ctx); err != nil {
		return fmt.Errorf("update-initramfs -u -k %s: %w", kernel, err)
	}
	return nil
}
