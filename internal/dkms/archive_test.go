package dkms_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Runner is what keeping needs of dkms (an external test package: keep
// imports dkms).
var _ keep.DKMS = dkms.Runner{}

// fakeDKMS puts a dkms first on PATH that logs its argv, one <arg> each,
// a line per run, to the returned file, and exits with the status in
// $dir/rc (0 when absent).
func fakeDKMS(t *testing.T) (calls, rc string) {
	t.Helper()
	dir := t.TempDir()
	calls, rc = filepath.Join(dir, "calls"), filepath.Join(dir, "rc")
	script := "#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done >>" + calls + "\necho >>" + calls +
		"\necho dkms output\n[ -f " + rc + " ] && exit $(cat " + rc + ")\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "dkms"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return calls, rc
}

func TestArchiveArguments(t *testing.T) {
	calls, _ := fakeDKMS(t)
	ctx := context.Background()
	r := dkms.Runner{}
	var out bytes.Buffer
	const k = "6.1.0-47-amd64"
	for _, err := range []error{
		r.MkTarball(ctx, "a b", "1.0", k, false, "/var/lib/dkms-guard/kept/x y.tar.gz", &out),
		r.MkTarball(ctx, "hello", "1.0", k, true, "/k/h.tar.gz", &out),
		r.LdTarball(ctx, "/k/h.tar.gz", false, &out),
		r.LdTarball(ctx, "/k/h.tar.gz", true, &out),
		r.InstallKept(ctx, "hello", "1.0", k, &out),
		r.Remove(ctx, "hello", "1.0", k, &out),
		r.Remove(ctx, "hello", "1.0", "", &out),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := "<mktarball><-m><a b><-v><1.0><-k><" + k + "><--archive=/var/lib/dkms-guard/kept/x y.tar.gz>\n" +
		"<mktarball><-m><hello><-v><1.0><-k><" + k + "><--archive=/k/h.tar.gz><--binaries-only>\n" +
		"<ldtarball><--archive=/k/h.tar.gz>\n" +
		"<ldtarball><--archive=/k/h.tar.gz><--force>\n" +
		"<install><--force><--no-depmod><-m><hello><-v><1.0><-k><" + k + ">\n" +
		"<remove><-m><hello><-v><1.0><-k><" + k + ">\n" +
		"<remove><-m><hello><-v><1.0><--all>\n"
	if data, _ := os.ReadFile(calls); string(data) != want {
		t.Errorf("calls\n%s\nwant\n%s", data, want)
	}
	if n := bytes.Count(out.Bytes(), []byte("dkms output\n")); n != 7 {
		t.Errorf("output of %d runs, want 7: %q", n, out.String())
	}
}

// ldtarball --force of a version still added loads the binaries, then
// add_module exits 3: that is success. Without --force, and any other
// status, it is an error.
func TestLdTarballAlreadyAdded(t *testing.T) {
	_, rc := fakeDKMS(t)
	ctx := context.Background()
	if err := os.WriteFile(rc, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := dkms.Runner{}
	if err := r.LdTarball(ctx, "/k/h.tar.gz", true, nil); err != nil {
		t.Errorf("--force, exit 3: %v", err)
	}
	var xe *program.ExitError
	if err := r.LdTarball(ctx, "/k/h.tar.gz", false, nil); !errors.As(err, &xe) || xe.Code != 3 {
		t.Errorf("no --force, exit 3: %v", err)
	}
	if err := os.WriteFile(rc, []byte("8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.LdTarball(ctx, "/k/h.tar.gz", true, nil); !errors.As(err, &xe) || xe.Code != 8 {
		t.Errorf("--force, exit 8: %v", err)
	}
	if err := r.MkTarball(ctx, "hello", "1.0", "k", false, "/k/h.tar.gz", nil); !errors.As(err, &xe) || xe.Code != 8 {
		t.Errorf("mktarball, exit 8: %v", err)
	}
}

// tarball writes a gzip'ed tar of files (name: content) as mktarball lays
// them out.
func tarball(t *testing.T, name string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveModules(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "hello.tar.gz")
	tarball(t, archive, map[string]string{
		"./dkms_main_tree/6.12.107+deb13-amd64/x86_64/module/hello.ko.xz": "hello for 107",
		"./dkms_main_tree/6.12.107+deb13-amd64/x86_64/module/world.ko":    "world for 107",
		"./dkms_main_tree/6.12.107+deb13-amd64/x86_64/log/make.log":       "log",
		"./dkms_main_tree/6.12.113+deb13-amd64/x86_64/module/hello.ko.xz": "hello for 113",
		"./dkms_source_tree/dkms.conf":                                    "PACKAGE_NAME=hello",
		"./dkms_source_tree/evil.ko":                                      "not a build",
	})
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	names, err := dkms.ArchiveModules(archive, "6.12.107+deb13-amd64", out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(out, "hello.ko.xz"), filepath.Join(out, "world.ko")}
	if !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	if data, _ := os.ReadFile(names[0]); string(data) != "hello for 107" {
		t.Errorf("hello.ko.xz holds %q", data)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("out holds %d files", len(entries))
	}
	if _, err := dkms.ArchiveModules(filepath.Join(dir, "gone.tar.gz"), "k", out); err == nil {
		t.Error("a missing archive: no error")
	}
	if err := os.WriteFile(archive, []byte("\x1f\x8bnot gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dkms.ArchiveModules(archive, "k", out); err == nil {
		t.Error("a corrupt archive: no error")
	}
}
