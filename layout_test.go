package main_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// layers is the package layout of README.md, bottom up: a package may
// import only packages of lower layers. A new package must be placed here.
var layers = [][]string{
	{"file"},
	{"paths", "lock"},
	{"report", "plan", "state", "program", "shellconf"},
	{"dkms", "dpkg", "config", "initramfs", "bootloader"},
	{"host", "critical"},
	{"build"},
	{"results"},
	{"boot"},
	{"kernelhook", "apthook"},
	{"app"},
}

// TestImportsGoDownwards reads every package's non-test imports.
func TestImportsGoDownwards(t *testing.T) {
	const prefix = "github.com/dkms-guard/dkms-guard/internal/"
	layerOf := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layerOf[p] = i
		}
	}
	dirs, err := os.ReadDir("internal")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		pkg := d.Name()
		layer, ok := layerOf[pkg]
		if !ok {
			t.Errorf("internal/%s is not in the layout (layout_test.go, README.md)", pkg)
			continue
		}
		files, _ := filepath.Glob(filepath.Join("internal", pkg, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(path, prefix) {
					if pkg != "app" && strings.HasPrefix(path, "github.com/urfave/cli") {
						t.Errorf("%s imports urfave/cli: only app wires the CLI", f)
					}
					continue
				}
				dep := strings.TrimPrefix(path, prefix)
				if l, ok := layerOf[dep]; !ok || l >= layer {
					t.Errorf("%s imports %s, which is not below %s", f, dep, pkg)
				}
			}
		}
	}
}
