package app

import (
	"os"
	"path/filepath"
	"testing"
)

// The apt hooks run on every apt command that invokes dpkg. On a machine
// without DKMS modules they must cost about a process start: these measure
// the in-process part (see BENCHMARKS.md for whole-process numbers).
func benchHook(b *testing.B, root string, args ...string) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	stderr := os.Stderr
	os.Stderr = devnull
	defer func() { os.Stderr = stderr }()
	argv := append([]string{"dkms-guard", "--root", root}, args...)
	b.ReportAllocs()
	for b.Loop() {
		if code := Main(argv, "bench"); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

func BenchmarkPreInvokeNoDKMS(b *testing.B)  { benchHook(b, b.TempDir(), "pre-invoke") }
func BenchmarkPostInvokeNoDKMS(b *testing.B) { benchHook(b, b.TempDir(), "post-invoke") }

// With a DKMS tree but no run recorded (post-invoke after a run that
// recorded nothing): one lstat, one open, one read.
func BenchmarkPostInvokeNoRun(b *testing.B) {
	root := b.TempDir()
	must(b, os.MkdirAll(filepath.Join(root, "var/lib/dkms"), 0o755))
	must(b, os.MkdirAll(filepath.Join(root, "var/lib/dkms-guard"), 0o700))
	benchHook(b, root, "post-invoke")
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
