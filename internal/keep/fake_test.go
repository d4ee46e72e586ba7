package keep

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

const arch = "x86_64"

// fakeDKMS does to a fake tree (internal/dkms/tree.go's layout) what dkms
// does to the real one, and logs each call.
type fakeDKMS struct {
	t     *testing.T
	p     paths.Paths
	calls []string
	fail  map[string]error // "verb M/V/K" (ldtarball: the archive's base name)
}

func (f *fakeDKMS) call(key string) error {
	f.calls = append(f.calls, key)
	return f.fail[key]
}

func (f *fakeDKMS) MkTarball(ctx context.Context, module, version, kernel string, binariesOnly bool, archive string, out io.Writer) error {
	verb := "mktarball"
	if binariesOnly {
		verb += " --binaries-only"
	}
	if err := f.call(fmt.Sprintf("%s %s/%s/%s", verb, module, version, kernel)); err != nil {
		return err
	}
	dir := filepath.Join(f.p.DKMSTree(), module, version, kernel, arch, "module")
	kos, _ := os.ReadDir(dir)
	if len(kos) == 0 {
		return errors.New("exit status 6")
	}
	files := map[string]string{}
	for _, ko := range kos {
		data, err := os.ReadFile(filepath.Join(dir, ko.Name()))
		must(f.t, err)
		files["./dkms_main_tree/"+kernel+"/"+arch+"/module/"+ko.Name()] = string(data)
	}
	conf := fmt.Sprintf("PACKAGE_NAME=%s\nPACKAGE_VERSION=%s\n", module, version)
	if binariesOnly {
		files["./dkms_binaries_only/dkms.conf"] = conf
	} else {
		files["./dkms_source_tree/dkms.conf"] = conf
	}
	must(f.t, os.WriteFile(archive, tarGz(f.t, files), 0o644))
	return nil
}

func (f *fakeDKMS) LdTarball(ctx context.Context, archive string, force bool, out io.Writer) error {
	verb := "ldtarball"
	if force {
		verb += " --force"
	}
	if err := f.call(verb + " " + filepath.Base(archive)); err != nil {
		return err
	}
	files := untarGz(f.t, archive)
	conf, source := files["./dkms_source_tree/dkms.conf"]
	if !source {
		conf = files["./dkms_binaries_only/dkms.conf"]
	}
	var m, v string
	fmt.Sscanf(strings.ReplaceAll(conf, "\n", " "), "PACKAGE_NAME=%s PACKAGE_VERSION=%s", &m, &v)
	tree := filepath.Join(f.p.DKMSTree(), m, v)
	if _, err := os.Lstat(filepath.Join(tree, "source")); err == nil && !force {
		return errors.New("exit status 8")
	}
	src := filepath.Join(f.p.SourceTree(), m+"-"+v)
	if source {
		os.RemoveAll(src)
		must(f.t, os.MkdirAll(src, 0o755))
		must(f.t, os.WriteFile(filepath.Join(src, "dkms.conf"), []byte(conf), 0o644))
	} else if !isDir(src) {
		return errors.New("exit status 1") // dkms 3.2: no source, not added
	}
	for name, data := range files {
		if rest, ok := strings.CutPrefix(name, "./dkms_main_tree/"); ok {
			to := filepath.Join(tree, rest)
			must(f.t, os.MkdirAll(filepath.Dir(to), 0o755))
			must(f.t, os.WriteFile(to, []byte(data), 0o644))
		}
	}
	if _, err := os.Lstat(filepath.Join(tree, "source")); err == nil {
		return nil // forced: dkms's add_module exits 3, the runner says nil
	}
	return os.Symlink(src, filepath.Join(tree, "source"))
}

func (f *fakeDKMS) InstallKept(ctx context.Context, module, version, kernel string, out io.Writer) error {
	if err := f.call(fmt.Sprintf("install --force %s/%s/%s", module, version, kernel)); err != nil {
		return err
	}
	if !isDir(filepath.Join(f.p.DKMSTree(), module, version, kernel, arch, "module")) {
		return errors.New("exit status 4")
	}
	link := filepath.Join(f.p.DKMSTree(), module, "kernel-"+kernel+"-"+arch)
	os.Remove(link)
	return os.Symlink(filepath.Join(version, kernel, arch), link)
}

func (f *fakeDKMS) Remove(ctx context.Context, module, version, kernel string, out io.Writer) error {
	if kernel != "" {
		if err := f.call(fmt.Sprintf("remove %s/%s -k %s", module, version, kernel)); err != nil {
			return err
		}
		link := filepath.Join(f.p.DKMSTree(), module, "kernel-"+kernel+"-"+arch)
		if t, _ := os.Readlink(link); t == filepath.Join(version, kernel, arch) {
			os.Remove(link)
		}
		return os.RemoveAll(filepath.Join(f.p.DKMSTree(), module, version, kernel))
	}
	if err := f.call(fmt.Sprintf("remove %s/%s --all", module, version)); err != nil {
		return err
	}
	links, _ := filepath.Glob(filepath.Join(f.p.DKMSTree(), module, "kernel-*"))
	for _, l := range links {
		if t, _ := os.Readlink(l); strings.HasPrefix(t, version+"/") {
			os.Remove(l)
		}
	}
	return os.RemoveAll(filepath.Join(f.p.DKMSTree(), module, version))
}

func (f *fakeDKMS) Depmod(ctx context.Context, kernel string, out io.Writer) error {
	return f.call("depmod " + kernel)
}

// fakeInitramfs lists images from a map (by the image's name as
// users see it) and logs updates.
type fakeInitramfs struct {
	images  map[string][]string
	updated []string
}

func (f *fakeInitramfs) List(ctx context.Context, image string) ([]string, error) {
	files, ok := f.images[image]
	if !ok {
		return nil, errors.New("lsinitramfs: cannot read " + image)
	}
	return files, nil
}

func (f *fakeInitramfs) Update(ctx context.Context, kernel string, out io.Writer) error {
	f.updated = append(f.updated, kernel)
	return nil
}

// fakeChecker returns err and keeps the base names of the files checked.
type fakeChecker struct {
	err     error
	checked []string
}

func (f *fakeChecker) Fits(ctx context.Context, files []string, kernel string) error {
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		f.checked = append(f.checked, filepath.Base(file)+"="+string(data))
	}
	return f.err
}

func tarGz(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, data := range files {
		must(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(data))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, zw.Close())
	return buf.Bytes()
}

func untarGz(t *testing.T, name string) map[string]string {
	f, err := os.Open(name)
	must(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	must(t, err)
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		data, err := io.ReadAll(tr)
		must(t, err)
		out[h.Name] = string(data)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
