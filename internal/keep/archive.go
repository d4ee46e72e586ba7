package keep

// The kept directory (paths.KeptDir) holds one dkms archive per kept
// build and nothing else: it is 0700, a real directory owned by us, and
// every name in it is opened through an os.Root, so that a link planted
// there can neither redirect a write nor a removal. A name kept.json does
// not list is a leftover (a crash between mktarball and the save) and
// Settle removes it.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// archiveSuffix ends every archive name: dkms's mktarball picks its
// compression from it (tar -caf), and loading reads it back as gzip.
const archiveSuffix = ".dkms.tar.gz"

// fitsPrefix begins the name of a check's scratch directory.
const fitsPrefix = ".fits-"

// keptAside tells whether a kept.json was set aside as corrupt (or as
// written by a newer dkms-guard): the archives it listed are then the
// only trace of those builds, and no sweep takes them.
func keptAside(st *state.Store) bool {
	ents, _ := os.ReadDir(st.Dir())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), state.KeptFile+".corrupt-") {
			return true
		}
	}
	return false
}

// archiveName names the archive of module/version for kernel: M-V-K,
// each part made safe for a file name. Should that name be taken by
// another build (a "-" inside a name makes M-V-K ambiguous), the whole
// key is hashed instead (SafeName is one-to-one).
func archiveName(kept state.Kept, module, version, kernel string) string {
	name := paths.SafeName(module) + "-" + paths.SafeName(version) + "-" + paths.SafeName(kernel) + archiveSuffix
	for _, b := range kept.Builds {
		if b.Archive == name && (b.Module != module || b.Version != version || b.Kernel != kernel) {
			return paths.SafeName(module+"/"+version+"/"+kernel) + archiveSuffix
		}
	}
	return name
}

// openDir opens the kept directory, made (0700) when create; a missing
// one without create is fs.ErrNotExist.
func openDir(p paths.Paths, create bool) (*os.Root, error) {
	dir := p.KeptDir()
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if err := file.CheckDir(dir, fi, os.Geteuid()); err != nil {
		return nil, fmt.Errorf("kept builds' directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if rfi, err := root.Stat("."); err != nil || !os.SameFile(fi, rfi) {
		root.Close()
		return nil, fmt.Errorf("%s was replaced while being opened", dir)
	}
	return root, nil
}

// archiveSize is the size of the archive name, which must be a regular file.
func archiveSize(root *os.Root, name string) (int64, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: %w", filepath.Join(root.Name(), name), file.ErrNotRegular)
	}
	return fi.Size(), nil
}

// haveArchive tells whether the archive name is there.
func haveArchive(root *os.Root, name string) bool {
	_, err := archiveSize(root, name)
	return err == nil
}

// removeArchive deletes the archive name; a missing one is no error.
func removeArchive(root *os.Root, name string) error {
	if name == "" {
		return nil
	}
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// sweep removes what kept.json does not list from the kept directory;
// with orphans false, only the checks' scratch directories (.fits-*).
func sweep(root *os.Root, kept state.Kept, orphans bool) error {
	listed := map[string]bool{}
	for _, b := range kept.Builds {
		listed[b.Archive] = true
	}
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if !listed[n] && (orphans || strings.HasPrefix(n, fitsPrefix)) {
			errs = append(errs, root.RemoveAll(n))
		}
	}
	return errors.Join(errs...)
}

// extractModules copies the kernel modules built for kernel out of the
// archive name (dkms.ArchiveModules) into a fresh directory inside root,
// for the Checker. It returns their paths and the directory's name, which
// the caller removes.
func extractModules(root *os.Root, name, kernel string) ([]string, string, error) {
	dir := fitsPrefix + strings.TrimSuffix(name, archiveSuffix)
	if err := root.RemoveAll(dir); err != nil {
		return nil, "", err
	}
	if err := root.Mkdir(dir, 0o700); err != nil {
		return nil, "", err
	}
	files, err := dkms.ArchiveModules(filepath.Join(root.Name(), name), kernel, filepath.Join(root.Name(), dir))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("%s holds no kernel module built for %s", name, kernel)
	}
	return files, dir, err
}
