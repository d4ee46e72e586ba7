package initramfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// fake puts a shell script named name first on PATH; it logs its
// arguments, one per line, to the returned file before running script.
func fake(t *testing.T, name, script string) (argv string) {
	t.Helper()
	dir := t.TempDir()
	argv = filepath.Join(dir, "argv")
	body := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + argv + "\n" + script
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return argv
}

// args is what a fake was called with.
func args(t *testing.T, argv string) []string {
	t.Helper()
	data, err := os.ReadFile(argv)
	if err != nil {
		t.Fatalf("the fake never ran: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// backstop bounds a test whose program should be stopped by the code
// under test long before: if it is not, the run ends as interrupted
// rather than timed out, and the test says so.
func backstop(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// List runs `lsinitramfs IMAGE`, the image one argument however it is
// spelt, and returns stdout's lines: stderr's chatter is no path.
func TestListArgvAndOutput(t *testing.T) {
	argv := fake(t, "lsinitramfs", `
echo usr/lib/modules/6.1.0-56-amd64/updates/dkms/hello.ko.xz
echo 'cpio: warning: odd header' >&2
echo 'usr/lib/with space.ko'
`)
	image := "/boot/initrd.img-6.1.0-56-amd64 x"
	got, err := Tool{}.List(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{image}; !slices.Equal(args(t, argv), want) {
		t.Errorf("argv = %q, want %q", args(t, argv), want)
	}
	want := []string{"usr/lib/modules/6.1.0-56-amd64/updates/dkms/hello.ko.xz", "usr/lib/with space.ko"}
	if !slices.Equal(got, want) {
		t.Errorf("paths = %q, want %q", got, want)
	}
}

// A failing lsinitramfs is an error naming the program, the image, the
// exit status and what it said on stderr.
func TestListFailure(t *testing.T) {
	fake(t, "lsinitramfs", "echo 'gzip: stdin: not in gzip format' >&2\nexit 3\n")
	paths, err := Tool{}.List(context.Background(), "/boot/initrd.img-6.1.0-56-amd64")
	var xe *program.ExitError
	if !errors.As(err, &xe) || xe.Code != 3 {
		t.Fatalf("err = %v, want exit 3", err)
	}
	if want := "lsinitramfs /boot/initrd.img-6.1.0-56-amd64: exit 3: gzip: stdin: not in gzip format"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if paths != nil {
		t.Errorf("paths = %q after a failure", paths)
	}
}

// What lsinitramfs prints is bounded: the listing (16 MiB) and, in the
// error, its stderr (64 KiB), however much it writes.
func TestListBounded(t *testing.T) {
	fake(t, "lsinitramfs", "yes usr/lib/modules/k/kernel/drivers/x.ko | head -c 20000000\n")
	paths, err := Tool{}.List(context.Background(), "img")
	if err == nil || !strings.Contains(err.Error(), "its listing is over") || paths != nil {
		t.Errorf("a listing past the bound gave %d paths, err %v: want an error, never a cut listing", len(paths), err)
	}

	fake(t, "lsinitramfs", "yes 'an error line' | head -c 1000000 >&2\nexit 1\n")
	_, err = Tool{}.List(context.Background(), "img")
	if err == nil || len(err.Error()) > 64<<10+100 {
		t.Errorf("error of %d bytes for 1000000 bytes of stderr", len(err.Error()))
	}
}

// A line over 64 KiB (bufio.Scanner's limit) ends nothing: the paths
// after it are listed too.
func TestListLongLine(t *testing.T) {
	fake(t, "lsinitramfs", "echo a.ko; head -c 70000 /dev/zero | tr '\\0' x; echo; echo b.ko\n")
	paths, err := Tool{}.List(context.Background(), "img")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || paths[0] != "a.ko" || len(paths[1]) != 70000 || paths[2] != "b.ko" {
		t.Errorf("got %d paths (first %q, last %q), want a.ko, the long line, b.ko", len(paths), paths[0], paths[len(paths)-1])
	}
}

// A hung lsinitramfs is killed after listTimeout, and the error says so.
func TestListTimeout(t *testing.T) {
	defer func(d time.Duration) { listTimeout = d }(listTimeout)
	listTimeout = 200 * time.Millisecond
	fake(t, "lsinitramfs", "exec sleep 3600\n")
	_, err := Tool{}.List(backstop(t), "/boot/initrd.img-k")
	var xe *program.ExitError
	if !errors.As(err, &xe) || !xe.TimedOut {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if want := "lsinitramfs /boot/initrd.img-k: timed out after 200ms, process group killed"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to begin %q", err, want)
	}
}

// Update runs `update-initramfs -u -k KERNEL` with its stdout and its
// stderr both going to out (the hook's log), nothing kept back.
func TestUpdate(t *testing.T) {
	argv := fake(t, "update-initramfs", "echo 'update-initramfs: Generating /boot/initrd.img-6.1.0-56-amd64'\necho 'W: Possible missing firmware' >&2\n")
	var out bytes.Buffer
	if err := (Tool{}).Update(context.Background(), "6.1.0-56-amd64", &out); err != nil {
		t.Fatal(err)
	}
	if want := []string{"-u", "-k", "6.1.0-56-amd64"}; !slices.Equal(args(t, argv), want) {
		t.Errorf("argv = %q, want %q", args(t, argv), want)
	}
	if want := "update-initramfs: Generating /boot/initrd.img-6.1.0-56-amd64\nW: Possible missing firmware\n"; out.String() != want {
		t.Errorf("out = %q, want %q", out.String(), want)
	}
}

// A failing update-initramfs is an error naming the kernel and the exit
// status; what it said is in out, not in the error.
func TestUpdateFailure(t *testing.T) {
	fake(t, "update-initramfs", "echo 'E: mkinitramfs failure cpio 141' >&2\nexit 1\n")
	var out bytes.Buffer
	err := (Tool{}).Update(context.Background(), "6.1.0-56-amd64", &out)
	var xe *program.ExitError
	if !errors.As(err, &xe) || xe.Code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	if want := "update-initramfs -u -k 6.1.0-56-amd64: exit 1"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if out.String() != "E: mkinitramfs failure cpio 141\n" {
		t.Errorf("out = %q", out.String())
	}
}

// A hung update-initramfs is killed after updateTimeout, and the error
// names the kernel and says so.
func TestUpdateTimeout(t *testing.T) {
	defer func(d time.Duration) { updateTimeout = d }(updateTimeout)
	updateTimeout = 200 * time.Millisecond
	fake(t, "update-initramfs", "exec sleep 3600\n")
	err := (Tool{}).Update(backstop(t), "6.1.0-56-amd64", nil)
	var xe *program.ExitError
	if !errors.As(err, &xe) || !xe.TimedOut {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if want := "update-initramfs -u -k 6.1.0-56-amd64: timed out after 200ms, process group killed"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

// Neither program on PATH: an error, not a hang or a panic.
func TestNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := (Tool{}).List(context.Background(), "img"); !errors.Is(err, program.ErrNotFound) {
		t.Errorf("List: %v", err)
	}
	if err := (Tool{}).Update(context.Background(), "k", nil); !errors.Is(err, program.ErrNotFound) {
		t.Errorf("Update: %v", err)
	}
}
