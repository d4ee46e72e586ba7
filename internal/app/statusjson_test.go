package app

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// jsonFields lists the key paths of t's JSON form: "a.b" for an object's
// field, "a[].b" inside an array's objects, "a{}" for an object keyed by
// name (a kernel, a module), followed by what each value holds.
func jsonFields(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Time{}):
	case t.Kind() == reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			*out = append(*out, path)
			jsonFields(f.Type, path, out)
		}
		return
	case t.Kind() == reflect.Slice:
		jsonFields(t.Elem(), prefix+"[]", out)
	case t.Kind() == reflect.Map:
		jsonFields(t.Elem(), prefix+"{}", out)
	}
}

// documented lists the key paths README.md's "status --json" section
// documents: the first cell of each table row, in backquotes.
func documented(t *testing.T) []string {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(data, []byte("\n### status --json\n"))
	if !ok {
		t.Fatal("README.md has no \"### status --json\" section")
	}
	if end := bytes.Index(rest, []byte("\n#")); end >= 0 {
		rest = rest[:end]
	}
	var out []string
	for _, line := range strings.Split(string(rest), "\n") {
		if cell, ok := strings.CutPrefix(line, "| `"); ok {
			path, _, _ := strings.Cut(cell, "`")
			out = append(out, path)
		}
	}
	return out
}

// Every field status --json can print is documented in README.md, and
// every documented field exists: the schema is a stable interface.
func TestStatusJSONDocumented(t *testing.T) {
	var fields []string
	jsonFields(reflect.TypeOf(statusJSON{}), "", &fields)
	jsonFields(reflect.TypeOf(statusUserJSON{}), "", &fields)
	slices.Sort(fields)
	fields = slices.Compact(fields)
	docs := documented(t)
	for _, f := range fields {
		if !slices.Contains(docs, f) {
			t.Errorf("status --json prints %s, which README.md's \"status --json\" table does not document: add a row for it", f)
		}
	}
	for _, d := range docs {
		if !slices.Contains(fields, d) {
			t.Errorf("README.md's \"status --json\" table documents %s, which status --json does not print", d)
		}
	}
}
