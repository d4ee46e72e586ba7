package main_test

import (
	"bufio"
	"bytes"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layers is the package layout of docs/development.md, bottom up: a
// package may import only packages of lower layers. A new package must be
// placed here and in docs/development.md's Layout table, in the same order.
var layers = [][]string{
	{"file"},
	{"paths", "lock", "plan"},
	{"report", "state", "program", "shellconf", "metrics", "notifier"},
	{"dkms", "dpkg", "config", "initramfs", "bootloader", "aptconf", "mail", "secureboot", "kmod"},
	{"host", "critical"},
	{"build", "inuse", "keep"},
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
			t.Errorf("internal/%s is not in layers (layout_test.go): place it in a layer, and add its row to docs/development.md's Layout table", pkg)
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

// layoutDoc is where the Layout table lives.
const layoutDoc = "docs/development.md"

// docLayout is layoutDoc's Layout section and the packages its table
// lists, top to bottom.
func docLayout(t *testing.T) (section string, pkgs []string) {
	t.Helper()
	data, err := os.ReadFile(layoutDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(data, []byte("\n## Layout\n"))
	if !ok {
		t.Fatal(layoutDoc + " has no \"## Layout\" section")
	}
	if end := bytes.Index(rest, []byte("\n#")); end >= 0 {
		rest = rest[:end]
	}
	sc := bufio.NewScanner(bytes.NewReader(rest))
	for sc.Scan() {
		// A package row: | `name` | what it is |
		cell, _, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "| `"), "`")
		if strings.HasPrefix(sc.Text(), "| `") {
			pkgs = append(pkgs, cell)
		}
	}
	return string(rest), pkgs
}

// TestLayoutDoc compares docs/development.md's Layout table with layers and with
// the directories under internal/, and checks that the section names every
// command under cmd/.
func TestLayoutDoc(t *testing.T) {
	section, table := docLayout(t)
	want := slices.Concat(layers...)
	for _, p := range want {
		if !slices.Contains(table, p) {
			t.Errorf("docs/development.md's Layout table lacks a row for %s: add \"| `%s` | what it is |\" in its layer's place", p, p)
		}
		if fi, err := os.Stat(filepath.Join("internal", p)); err != nil || !fi.IsDir() {
			t.Errorf("layers (layout_test.go) names %s, which is not a directory under internal/", p)
		}
	}
	for _, p := range table {
		if !slices.Contains(want, p) {
			t.Errorf("docs/development.md's Layout table has a row for %s, which is not in layers (layout_test.go)", p)
		}
	}
	// Each package may import the ones above it: the rows go bottom layer first.
	layerOf := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layerOf[p] = i
		}
	}
	for i := 1; i < len(table); i++ {
		above, p := table[i-1], table[i]
		la, okA := layerOf[above]
		lp, okP := layerOf[p]
		if okA && okP && lp < la {
			t.Errorf("docs/development.md's Layout table lists %s (layer %d) after %s (layer %d): rows go bottom layer first, as in layers", p, lp, above, la)
		}
	}
	cmds, err := os.ReadDir("cmd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if name := "`cmd/" + c.Name() + "`"; !strings.Contains(section, name) {
			t.Errorf("docs/development.md's Layout section does not name %s", name)
		}
	}
}
