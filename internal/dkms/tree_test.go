package dkms

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) { must(t, os.MkdirAll(filepath.Join(dir, p), 0o755)) }
	link := func(target, name string) { must(t, os.Symlink(target, filepath.Join(dir, name))) }
	mk("hello/1.0/6.1.0-47-amd64/x86_64/module")
	link("/usr/src/hello-1.0", "hello/1.0/source")
	mk("hello/2.0")
	link("/usr/src/hello-2.0", "hello/2.0/source")
	link("1.0/6.1.0-47-amd64/x86_64", "hello/kernel-6.1.0-47-amd64-x86_64")
	link(filepath.Join(dir, "hello/2.0/6.1.0-56-amd64/x86_64"), "hello/kernel-6.1.0-56-amd64-x86_64")
	mk("hello/original_module/6.1.0-47-amd64/x86_64")
	mk("notadded/1.0") // no source: not added, as dkms's is_module_added
	must(t, os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644))

	tree, err := ReadTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree) != 2 || tree[0].Version != "1.0" || tree[1].Version != "2.0" {
		t.Fatalf("tree = %+v", tree)
	}
	if !tree[0].InstalledFor("6.1.0-47-amd64") || tree[0].InstalledFor("6.1.0-56-amd64") {
		t.Errorf("1.0 installed = %v", tree[0].Installed)
	}
	if !tree[1].InstalledFor("6.1.0-56-amd64") {
		t.Errorf("absolute kernel link not read: %v", tree[1].Installed)
	}
	if n, _ := tree.Newest("hello"); n.Version != "2.0" {
		t.Errorf("newest = %s", n.Version)
	}
	if m, ok := tree.InstalledFor("hello", "6.1.0-47-amd64"); !ok || m.Version != "1.0" {
		t.Errorf("InstalledFor = %+v %v", m, ok)
	}
	missing, err := ReadTree(filepath.Join(dir, "nope"))
	if err != nil || len(missing) != 0 {
		t.Errorf("missing tree: %v %v", missing, err)
	}
}

// Install passes module, version and kernel as separate arguments, never
// through a shell: an odd name stays one argument.
func TestRunnerArguments(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := os.WriteFile(filepath.Join(dir, "dkms"), []byte("#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (Runner{}).Install(context.Background(), "a b", "1.0", "6.1.0-56-amd64", true, 0, &out, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "<install><--no-depmod><-m><a b><-v><1.0><-k><6.1.0-56-amd64>" {
		t.Errorf("arguments %q", got)
	}
	out.Reset()
	if err := (Runner{}).Build(context.Background(), "a b", "1.0", "6.1.0-56-amd64", 3, &out, nil); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "<build><-m><a b><-v><1.0><-k><6.1.0-56-amd64><-j><3>" {
		t.Errorf("arguments %q", got)
	}
}

// Ten modules with two versions and three kernels each: a busy DKMS host.
func BenchmarkReadTree(b *testing.B) {
	dir := b.TempDir()
	for m := 0; m < 10; m++ {
		for _, v := range []string{"1.0", "2.0"} {
			name := filepath.Join(dir, "mod"+string(rune('a'+m)), v)
			must(b, os.MkdirAll(name, 0o755))
			must(b, os.Symlink("/usr/src/x", filepath.Join(name, "source")))
		}
		for _, k := range []string{"6.1.0-47-amd64", "6.1.0-50-amd64", "6.1.0-56-amd64"} {
			must(b, os.Symlink("2.0/"+k+"/x86_64", filepath.Join(dir, "mod"+string(rune('a'+m)), "kernel-"+k+"-x86_64")))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if t, err := ReadTree(dir); err != nil || len(t) != 20 {
			b.Fatal(len(t), err)
		}
	}
}

// parallel_jobs counts only where the installed dkms reads it from its
// framework files; a value that cannot be read means one build at a time.
func TestFrameworkJobs(t *testing.T) {
	p := paths.New(t.TempDir())
	write := func(name, text string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(name), 0o755))
		must(t, os.WriteFile(name, []byte(text), 0o644))
	}
	conf := filepath.Join(p.DKMSConfDir(), "framework.conf")
	d := filepath.Join(p.DKMSConfDir(), "framework.conf.d")
	dkms30 := "readonly dkms_framework_nonsigning_variables=\"source_tree dkms_tree\n   modprobe_on_install\"\n"
	dkms32 := "readonly dkms_framework_nonsigning_variables=\"source_tree dkms_tree\n   modprobe_on_install parallel_jobs\n   post_transaction\"\n"
	write(conf, "parallel_jobs=3\n")
	for _, c := range []struct {
		script, extra string
		jobs          int
		ok            bool
	}{
		{dkms30, "", 0, false},                        // 3.0 ignores it there
		{dkms32, "", 3, true},                         // framework.conf
		{dkms32, "parallel_jobs=6\n", 6, true},        // a .d file wins
		{dkms32, "parallel_jobs=0\n", 0, false},       // make -j: no limit
		{dkms32, "parallel_jobs=$(nproc)\n", 1, true}, // cannot tell: as stock
		{dkms32, "parallel_jobs=lots\n", 1, true},
	} {
		write(p.DKMSProgram(), c.script)
		os.RemoveAll(d)
		if c.extra != "" {
			write(filepath.Join(d, "local.conf"), c.extra)
		}
		if jobs, ok := FrameworkJobs(p); jobs != c.jobs || ok != c.ok {
			t.Errorf("%q, %q: %d %v, want %d %v", c.script[:60], c.extra, jobs, ok, c.jobs, c.ok)
		}
	}
}
