// Package kmod tells whether built kernel modules load into a kernel: the
// same vermagic as the kernel's own modules, the same symbol versions
// (CRCs) as its Module.symvers. A kernel rebuilt at the same version (a
// reinstall, a rebuild with another compiler) can change either, and the
// kernel then refuses the module ("disagrees about version of symbol",
// "version magic ... should be ..."): a kept build is put back only when
// it fits.
//
// It reads modules with kmod's own programs, modinfo and modprobe (found
// on PATH by bare name), which read .ko, .ko.xz, .ko.zst and .ko.gz alike.
package kmod

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
)

// maxOutput bounds one modinfo or modprobe run's output: zfs.ko's
// modversions are about 2,500 lines of some 40 bytes.
const maxOutput = 4 << 20

// maxSymvers bounds a kernel's Module.symvers (Debian's amd64 one is
// about 2 MB).
const maxSymvers = 64 << 20

// shownSymbols is how many differing symbols an error names.
const shownSymbols = 3

// Checker checks modules against a kernel (keep.Checker).
type Checker struct {
	Paths   paths.Paths
	Timeout time.Duration // per program run; 0: none
	// Note, when set, is told what could not be checked (a kernel without
	// Module.symvers: vermagic only); Fits still returns nil then.
	Note func(msg string)
}

// MismatchError is a module that does not fit the kernel.
type MismatchError struct {
	File   string
	Kernel string
	// Vermagic and KernelVermagic, when they differ.
	Vermagic, KernelVermagic string
	// Symbols whose versions differ (at most shownSymbols), and how many
	// more do.
	Symbols []Symbol
	More    int
}

// Symbol is one symbol whose version differs: CRC in the module, Kernel
// in the kernel's Module.symvers.
type Symbol struct {
	Name        string
	CRC, Kernel uint64
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s does not fit kernel %s:", e.File, e.Kernel)
	if e.Vermagic != e.KernelVermagic {
		fmt.Fprintf(&b, " vermagic %q, the kernel's %q", e.Vermagic, e.KernelVermagic)
		if len(e.Symbols) > 0 {
			b.WriteString(";")
		}
	}
	for i, s := range e.Symbols {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " symbol %s crc 0x%08x, the kernel's 0x%08x", s.Name, s.CRC, s.Kernel)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, " and %d more", e.More)
	}
	return b.String()
}

// Fits tells whether every one of files loads into kernel: nil when each
// has the kernel's vermagic and, for every symbol it uses that the
// kernel's Module.symvers lists, the same CRC. A symbol Module.symvers does
// not list comes from another module (a DKMS one) and is not checked.
// Without Module.symvers (no headers) only vermagic is checked, and Note
// says so. A module that does not fit is a *MismatchError (errors.Join'ed
// when several do); any other error means the check could not be made.
func (c Checker) Fits(ctx context.Context, files []string, kernel string) error {
	if len(files) == 0 {
		return nil
	}
	want, err := c.kernelVermagic(ctx, kernel)
	if err != nil {
		return err
	}
	symvers := filepath.Join(c.Paths.KernelHeaders(kernel), "Module.symvers")
	haveSymvers := paths.Exists(symvers)
	if !haveSymvers && c.Note != nil {
		c.Note(fmt.Sprintf("kernel %s has no %s: symbol versions not checked, vermagic only", kernel, c.Paths.Rel(symvers)))
	}
	var errs []error
	for _, f := range files {
		got, err := modinfo{c.Timeout}.vermagic(ctx, f)
		if err != nil {
			return err
		}
		mm := &MismatchError{File: f, Kernel: kernel, Vermagic: got, KernelVermagic: want}
		if haveSymvers {
			used, err := modprobe{c.Timeout}.modversions(ctx, f)
			if err != nil {
				return err
			}
			kernelCRCs, err := readSymvers(symvers, used)
			if err != nil {
				return err
			}
			mm.Symbols, mm.More = differing(used, kernelCRCs)
		}
		if mm.Vermagic != mm.KernelVermagic || len(mm.Symbols) > 0 {
			errs = append(errs, mm)
		}
	}
	return errors.Join(errs...)
}

// kernelVermagic is the vermagic of one of the kernel's own modules
// (/lib/modules/K/kernel): the kernel's own, as its modules are built with
// it.
func (c Checker) kernelVermagic(ctx context.Context, kernel string) (string, error) {
	own, err := ownModule(filepath.Join(c.Paths.ModulesDir(), kernel, "kernel"))
	if err != nil {
		return "", fmt.Errorf("finding a module of kernel %s: %w", kernel, err)
	}
	return modinfo{c.Timeout}.vermagic(ctx, own)
}

// errNoModule means a kernel has no module of its own to compare with.
var errNoModule = errors.New("no module found")

// ownModule is the first module file found under dir, in lexical order.
func ownModule(dir string) (string, error) {
	var found string
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && isModule(d.Name()) {
			found = name
			return filepath.SkipAll
		}
		return nil
	})
	if err == nil && found == "" {
		err = fmt.Errorf("%s: %w", dir, errNoModule)
	}
	return found, err
}

// isModule tells whether name is a kernel module, compressed or not (the
// suffixes kmod reads).
func isModule(name string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// differing lists the symbols of used whose kernel CRC differs, sorted by
// name, at most shownSymbols, and how many more differ.
func differing(used, kernel map[string]uint64) ([]Symbol, int) {
	var all []Symbol
	for name, crc := range used {
		if k, ok := kernel[name]; ok && k != crc {
			all = append(all, Symbol{Name: name, CRC: crc, Kernel: k})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	if len(all) > shownSymbols {
		return all[:shownSymbols], len(all) - shownSymbols
	}
	return all, 0
}

// readSymvers reads the CRCs of the symbols in want from a Module.symvers
// ("0xCRC\tsymbol\tmodule\texport\tnamespace" lines; older kernels have no
// namespace column).
func readSymvers(name string, want map[string]uint64) (map[string]uint64, error) {
	f, fi, err := file.OpenRegular(name)
	if err != nil {
		return nil, fmt.Errorf("reading symbol versions: %w", err)
	}
	defer f.Close()
	if fi.Size() > maxSymvers {
		return nil, fmt.Errorf("reading symbol versions: %s is larger than %d bytes", name, maxSymvers)
	}
	crcs := make(map[string]uint64, len(want))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		crc, rest, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		sym, _, _ := strings.Cut(rest, "\t")
		if _, ok := want[sym]; !ok {
			continue
		}
		if v, err := strconv.ParseUint(crc, 0, 64); err == nil {
			crcs[sym] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading symbol versions: %s: %w", name, err)
	}
	return crcs, nil
}

// modinfo runs kmod's modinfo.
type modinfo struct{ timeout time.Duration }

// vermagic is `modinfo -F vermagic FILE`, trimmed.
func (m modinfo) vermagic(ctx context.Context, name string) (string, error) {
	out, err := run(ctx, m.timeout, "modinfo", "-F", "vermagic", name)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(out)
	if v == "" {
		return "", fmt.Errorf("modinfo %s: no vermagic", name)
	}
	return v, nil
}

// modprobe runs kmod's modprobe.
type modprobe struct{ timeout time.Duration }

// modversions is `modprobe --dump-modversions FILE`: the CRC of every
// symbol the module uses ("0xCRC\tsymbol" lines); none when the module was
// built without CONFIG_MODVERSIONS.
func (m modprobe) modversions(ctx context.Context, name string) (map[string]uint64, error) {
	out, err := run(ctx, m.timeout, "modprobe", "--dump-modversions", name)
	if err != nil {
		return nil, err
	}
	used := make(map[string]uint64)
	for _, line := range strings.Split(out, "\n") {
		crc, sym, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(crc), 0, 64)
		if err != nil {
			return nil, fmt.Errorf("modprobe --dump-modversions %s: odd line %q", name, line)
		}
		used[strings.TrimSpace(sym)] = v
	}
	return used, nil
}

// run runs a program and returns its standard output, bounded; its
// standard error is in the error.
func run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	out := &program.Capped{Max: maxOutput}
	errOut := &program.Capped{Max: 4 << 10}
	err := program.Cmd{Name: name, Args: args, Timeout: timeout, Out: out, Err: errOut}.Run(ctx)
	what := name + " " + strings.Join(args, " ")
	if err != nil {
		if msg := strings.TrimSpace(errOut.String()); msg != "" {
			return "", fmt.Errorf("%s: %w: %s", what, err, msg)
		}
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if out.Dropped() {
		return "", fmt.Errorf("%s: more than %d bytes of output", what, maxOutput)
	}
	return out.String(), nil
}
