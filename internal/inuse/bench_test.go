package inuse

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/critical"
	"github.com/dkms-guard/dkms-guard/internal/paths"
)

// Find runs once per boot decision while a kernel lacks a module: a
// desktop's /proc/modules (150 modules), /etc/modules, four
// modules-load.d files and the command line, for 10 DKMS modules.
func BenchmarkFind(b *testing.B) {
	root := b.TempDir()
	p := paths.New(root)
	var procModules strings.Builder
	for i := range 150 {
		fmt.Fprintf(&procModules, "mod%d 16384 0 - Live 0x0000000000000000\n", i)
	}
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write(p.ProcModules(), procModules.String())
	write(p.KernelCmdline(), "BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro quiet modules-load=mod7\n")
	write(p.EtcModules(), "# /etc/modules\nloop\n")
	for i, dir := range p.ModulesLoadDirs()[:4] {
		write(filepath.Join(dir, fmt.Sprintf("f%d.conf", i)), fmt.Sprintf("# comment\nmod%d\n", 100+i))
	}
	built := critical.Built{}
	for i := range 10 {
		built[fmt.Sprintf("dkms%d", i)] = []string{fmt.Sprintf("mod%d", i*20)}
	}
	f := Finder{Paths: p}
	b.ReportAllocs()
	for b.Loop() {
		if len(f.Find(built)) == 0 {
			b.Fatal("nothing in use")
		}
	}
}
