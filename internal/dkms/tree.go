package dkms

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
)

// Module is one module version in dkms's tree (/var/lib/dkms/M/V with a
// source link: dkms's is_module_added).
type Module struct {
	Name    string
	Version string
	// Installed maps each kernel this version is installed for to its arch:
	// dkms marks "installed" with the symlink M/kernel-K-A -> V/K/A.
	Installed map[string]string
}

// ConfFile is the module's dkms.conf inside the tree.
func (m Module) ConfFile(tree string) string {
	return filepath.Join(tree, m.Name, m.Version, "source", "dkms.conf")
}

// SourceDir is the module's source inside the tree: dkms's source link
// (to /usr/src/M-V), followed.
func (m Module) SourceDir(tree string) string {
	return filepath.Join(tree, m.Name, m.Version, "source") + string(filepath.Separator)
}

// InstalledFor tells whether this version is installed for kernel.
func (m Module) InstalledFor(kernel string) bool {
	_, ok := m.Installed[kernel]
	return ok
}

// Tree is every added module version, sorted by name, then version (VER).
type Tree []Module

// ReadTree reads dkms's tree without running dkms: `dkms status` costs a
// bash start and a dkms.conf source per module, the tree is a few readdirs.
// A missing tree is an empty tree.
func ReadTree(dir string) (Tree, error) {
	names, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading dkms tree: %w", err)
	}
	var t Tree
	for _, n := range names {
		if !n.IsDir() {
			continue
		}
		mods, err := readModule(filepath.Join(dir, n.Name()), n.Name())
		if err != nil {
			return nil, err
		}
		t = append(t, mods...)
	}
	sort.SliceStable(t, func(i, j int) bool {
		if t[i].Name != t[j].Name {
			return t[i].Name < t[j].Name
		}
		return VersionLess(t[i].Version, t[j].Version)
	})
	return t, nil
}

func readModule(dir, name string) ([]Module, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading dkms tree: %w", err)
	}
	byVersion := map[string]*Module{}
	var order []string
	for _, e := range ents {
		if e.Name() == "original_module" || strings.HasPrefix(e.Name(), "kernel-") {
			continue
		}
		src := filepath.Join(dir, e.Name(), "source")
		if _, err := os.Lstat(src); err != nil {
			continue // not added (dkms's is_module_added)
		}
		byVersion[e.Name()] = &Module{Name: name, Version: e.Name(), Installed: map[string]string{}}
		order = append(order, e.Name())
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "kernel-") || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		// dkms writes "V/K/A" (relative); accept an absolute link as well.
		parts := strings.Split(filepath.Clean(target), string(filepath.Separator))
		if len(parts) < 3 {
			continue
		}
		v, k, a := parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
		if e.Name() != "kernel-"+k+"-"+a {
			continue
		}
		if m := byVersion[v]; m != nil {
			m.Installed[k] = a
		}
	}
	out := make([]Module, 0, len(order))
	for _, v := range order {
		out = append(out, *byVersion[v])
	}
	return out, nil
}

// Names lists the distinct module names.
func (t Tree) Names() []string {
	var out []string
	for i, m := range t {
		if i == 0 || t[i-1].Name != m.Name {
			out = append(out, m.Name)
		}
	}
	return out
}

// Versions lists the versions of module, oldest first.
func (t Tree) Versions(module string) []Module {
	var out []Module
	for _, m := range t {
		if m.Name == module {
			out = append(out, m)
		}
	}
	return out
}

// Newest is the newest version of module, as dkms's autoinstall picks it.
func (t Tree) Newest(module string) (Module, bool) {
	vs := t.Versions(module)
	if len(vs) == 0 {
		return Module{}, false
	}
	return vs[len(vs)-1], true
}

// InstalledFor returns the version of module installed for kernel, if any.
func (t Tree) InstalledFor(module, kernel string) (Module, bool) {
	for _, m := range t {
		if m.Name == module && m.InstalledFor(kernel) {
			return m, true
		}
	}
	return Module{}, false
}

// LastBuild is the build dkms last left a log of in a module version's
// shared build directory: a failed one (a successful build's log moves on
// to M/V/K/A/log). dkms 3.0.10 and 3.2.2 head it "DKMS make.log for M-V for
// kernel K (A)", "DKMS (dkms-3.2.2) make.log for M/V for kernel K (A)".
type LastBuild struct {
	Kernel string
	Log    string    // the make.log
	Time   time.Time // when it was written
}

// FailedBuild reads module version m's last failed build log, if any.
func FailedBuild(tree string, m Module) (LastBuild, bool) {
	name := filepath.Join(tree, m.Name, m.Version, "build", "make.log")
	if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() {
		return LastBuild{}, false // never through a link
	}
	f, fi, err := file.OpenRegular(name)
	if err != nil {
		return LastBuild{}, false
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	_, rest, ok := strings.Cut(line, " for kernel ")
	if !ok || !strings.Contains(line, "make.log for ") {
		return LastBuild{}, false
	}
	kernel, _, _ := strings.Cut(rest, " (")
	return LastBuild{Kernel: strings.TrimSpace(kernel), Log: name, Time: fi.ModTime()}, true
}
