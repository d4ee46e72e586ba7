package dkms

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) { os.MkdirAll(filepath.Join(dir, p), 0o755) }
	link := func(target, name string) { os.Symlink(target, filepath.Join(dir, name)) }
	mk("hello/1.0/6.1.0-47-amd64/x86_64/module")
	link("/usr/src/hello-1.0", "hello/1.0/source")
	mk("hello/2.0")
	link("/usr/src/hello-2.0", "hello/2.0/source")
	link("1.0/6.1.0-47-amd64/x86_64", "hello/kernel-6.1.0-47-amd64-x86_64")
	link(filepath.Join(dir, "hello/2.0/6.1.0-56-amd64/x86_64"), "hello/kernel-6.1.0-56-amd64-x86_64")
	mk("hello/original_module/6.1.0-47-amd64/x86_64")
	mk("notadded/1.0") // no source: not added, as dkms's is_module_added
	os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644)

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

func fakeDKMS(t *testing.T, script string) Runner {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dkms")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return Runner{Program: p}
}

func TestRunnerOutcomes(t *testing.T) {
	var out bytes.Buffer
	r := fakeDKMS(t, `echo "args: $*"; exit 0`)
	if err := r.Install(context.Background(), "a b", "1.0", "6.1.0-56-amd64", &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "args: install -m a b -v 1.0 -k 6.1.0-56-amd64" {
		t.Errorf("output %q", got)
	}

	var xe *ExitError
	err := fakeDKMS(t, "exit 77").Install(context.Background(), "m", "1", "k", &out)
	if !errors.As(err, &xe) || xe.Code != Unsupported {
		t.Errorf("exit 77: %v", err)
	}
	err = fakeDKMS(t, "kill -TERM $$").Install(context.Background(), "m", "1", "k", &out)
	if !errors.As(err, &xe) || xe.Signal == "" || !strings.Contains(err.Error(), "signal 15") {
		t.Errorf("signal: %v", err)
	}
	err = Runner{Program: "dkms-guard-no-such-program"}.Install(context.Background(), "m", "1", "k", &out)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing program: %v", err)
	}
}

// A timeout kills the whole process group: a make below dkms must not
// outlive it, or apt would wait on its pipe forever.
func TestRunnerTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := fakeDKMS(t, `sh -c 'echo $$ > `+pidFile+`; exec sleep 60' & wait`)
	r.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := r.Install(context.Background(), "m", "1", "k", &bytes.Buffer{})
	var xe *ExitError
	if !errors.As(err, &xe) || !xe.TimedOut {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	// SIGKILL is delivered at once but dying takes a moment: poll.
	data, _ := os.ReadFile(pidFile)
	statFile := "/proc/" + strings.TrimSpace(string(data)) + "/stat"
	for deadline := time.Now().Add(5 * time.Second); ; {
		stat, err := os.ReadFile(statFile)
		if err != nil || strings.Contains(string(stat), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild still running 5 s after the kill: %s", stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ten modules with two versions and three kernels each: a busy DKMS host.
func BenchmarkReadTree(b *testing.B) {
	dir := b.TempDir()
	for m := 0; m < 10; m++ {
		for _, v := range []string{"1.0", "2.0"} {
			name := filepath.Join(dir, "mod"+string(rune('a'+m)), v)
			os.MkdirAll(name, 0o755)
			os.Symlink("/usr/src/x", filepath.Join(name, "source"))
		}
		for _, k := range []string{"6.1.0-47-amd64", "6.1.0-50-amd64", "6.1.0-56-amd64"} {
			os.Symlink("2.0/"+k+"/x86_64", filepath.Join(dir, "mod"+string(rune('a'+m)), "kernel-"+k+"-x86_64"))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if t, err := ReadTree(dir); err != nil || len(t) != 20 {
			b.Fatal(len(t), err)
		}
	}
}
