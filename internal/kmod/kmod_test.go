package kmod

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

const kernel = "6.1.0-47-amd64"

// fakes puts modinfo and modprobe first on PATH: a fake module is a text
// file whose "vermagic=" line modinfo prints and whose "0x" lines
// modprobe --dump-modversions prints. Both log their argv to calls.
func fakes(t *testing.T) (calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	write(t, filepath.Join(dir, "modinfo"), "#!/bin/sh\necho \"modinfo $*\" >>"+calls+"\n"+
		"[ \"$1 $2\" = '-F vermagic' ] || exit 9\n[ -f \"$3\" ] || { echo \"modinfo: ERROR: Module $3 not found.\" >&2; exit 1; }\nsed -n 's/^vermagic=//p' \"$3\"\n")
	write(t, filepath.Join(dir, "modprobe"), "#!/bin/sh\necho \"modprobe $*\" >>"+calls+"\n"+
		"[ \"$1\" = --dump-modversions ] || exit 9\ngrep '^0x' \"$2\"\nexit 0\n")
	for _, n := range []string{"modinfo", "modprobe"} {
		if err := os.Chmod(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return calls
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const magic = "6.1.0-47-amd64 SMP preempt mod_unload modversions "

// fakeRoot is a root with kernel's own module and, when symvers, its
// Module.symvers.
func fakeRoot(t *testing.T, symvers bool) paths.Paths {
	t.Helper()
	root := t.TempDir()
	p := paths.New(root)
	mods := filepath.Join(p.ModulesDir(), kernel)
	write(t, filepath.Join(mods, "kernel/arch/x86/crypto/aes.ko.xz"), "vermagic="+magic+"\n")
	write(t, filepath.Join(mods, "kernel/README"), "not a module\n")
	if symvers {
		write(t, filepath.Join(p.KernelHeaders(kernel), "Module.symvers"),
			"0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n"+
				"0x0000abcd\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n"+
				"0x11111111\tkmalloc\tvmlinux\tEXPORT_SYMBOL\t\n"+
				"0x22222222\tkfree\tvmlinux\tEXPORT_SYMBOL\n"+
				"0x33333333\tmemcpy\tvmlinux\tEXPORT_SYMBOL\tNS\n")
	}
	return p
}

func TestFits(t *testing.T) {
	calls := fakes(t)
	p := fakeRoot(t, true)
	dir := t.TempDir()
	good := filepath.Join(dir, "hello.ko")
	// zfs_helper is exported by another DKMS module: not in Module.symvers.
	write(t, good, "vermagic="+magic+"\n0x12345678\tprintk\n0x0000abcd\tmodule_layout\n0xdeadbeef\tzfs_helper\n")
	var notes []string
	c := Checker{Paths: p, Note: func(s string) { notes = append(notes, s) }}
	if err := c.Fits(context.Background(), []string{good}, kernel); err != nil {
		t.Fatalf("a fitting module: %v", err)
	}
	if len(notes) != 0 {
		t.Errorf("notes %q", notes)
	}
	data, _ := os.ReadFile(calls)
	want := "modinfo -F vermagic " + filepath.Join(p.ModulesDir(), kernel, "kernel/arch/x86/crypto/aes.ko.xz") + "\n" +
		"modinfo -F vermagic " + good + "\nmodprobe --dump-modversions " + good + "\n"
	if string(data) != want {
		t.Errorf("calls\n%s\nwant\n%s", data, want)
	}

	bad := filepath.Join(dir, "bad.ko")
	write(t, bad, "vermagic=6.1.0-47-amd64 SMP mod_unload modversions \n"+
		"0x12345679\tprintk\n0x0000abcd\tmodule_layout\n0x1\tkmalloc\n0x2\tkfree\n0x3\tmemcpy\n")
	err := c.Fits(context.Background(), []string{good, bad}, kernel)
	var mm *MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("a module that does not fit: %v", err)
	}
	if mm.File != bad || len(mm.Symbols) != shownSymbols || mm.More != 1 || mm.Symbols[0] != (Symbol{"kfree", 2, 0x22222222}) {
		t.Errorf("mismatch %+v", mm)
	}
	msg := err.Error()
	for _, s := range []string{bad, "does not fit kernel " + kernel, `vermagic "6.1.0-47-amd64 SMP mod_unload modversions"`,
		`the kernel's "6.1.0-47-amd64 SMP preempt mod_unload modversions"`, "symbol kfree crc 0x00000002, the kernel's 0x22222222", "and 1 more"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
	if strings.Contains(msg, good) {
		t.Errorf("error names the fitting module too: %q", msg)
	}
}

// Without Module.symvers only vermagic is checked, and Note says so.
func TestFitsNoSymvers(t *testing.T) {
	calls := fakes(t)
	p := fakeRoot(t, false)
	mod := filepath.Join(t.TempDir(), "hello.ko")
	write(t, mod, "vermagic="+magic+"\n0x1\tprintk\n")
	var notes []string
	c := Checker{Paths: p, Note: func(s string) { notes = append(notes, s) }}
	if err := c.Fits(context.Background(), []string{mod}, kernel); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "symbol versions not checked") || !strings.Contains(notes[0], "/lib/modules/"+kernel+"/build/Module.symvers") {
		t.Errorf("notes %q", notes)
	}
	if data, _ := os.ReadFile(calls); strings.Contains(string(data), "modprobe") {
		t.Errorf("modprobe ran: %s", data)
	}
	write(t, mod, "vermagic=6.1.0-48-amd64 SMP preempt mod_unload modversions \n")
	var mm *MismatchError
	if err := c.Fits(context.Background(), []string{mod}, kernel); !errors.As(err, &mm) || len(mm.Symbols) != 0 {
		t.Errorf("vermagic differs: %v", err)
	}
}

// A check that cannot be made is an error, but not a *MismatchError.
func TestFitsCannotCheck(t *testing.T) {
	fakes(t)
	var mm *MismatchError
	p := fakeRoot(t, true)
	if err := os.RemoveAll(filepath.Join(p.ModulesDir(), kernel, "kernel")); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(t.TempDir(), "hello.ko")
	write(t, mod, "vermagic="+magic+"\n")
	err := (Checker{Paths: p}).Fits(context.Background(), []string{mod}, kernel)
	if err == nil || errors.As(err, &mm) || !strings.Contains(err.Error(), "finding a module of kernel "+kernel) {
		t.Errorf("kernel without modules: %v", err)
	}
	p = fakeRoot(t, true)
	err = (Checker{Paths: p}).Fits(context.Background(), []string{mod + ".gone"}, kernel)
	if err == nil || errors.As(err, &mm) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing file: %v", err)
	}
}

// The real modinfo and modprobe agree: a module of the running kernel fits it.
func TestFitsReal(t *testing.T) {
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skip(err)
	}
	kernel := strings.TrimSpace(string(release))
	for _, prog := range []string{"modinfo", "modprobe"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("no %s", prog)
		}
	}
	p := paths.New("/")
	own, err := ownModule(filepath.Join(p.ModulesDir(), kernel, "kernel"))
	if err != nil {
		t.Skipf("kernel %s has no modules here: %v", kernel, err)
	}
	if err := (Checker{Paths: p, Note: func(s string) { t.Log(s) }}).Fits(context.Background(), []string{own}, kernel); err != nil {
		t.Errorf("%s does not fit its own kernel: %v", own, err)
	}
}
