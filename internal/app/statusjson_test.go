package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
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

// Every field status --json can print is in statusFields, the man page's
// JSON OUTPUT, and every field there exists: the schema is a stable interface.
func TestStatusJSONDocumented(t *testing.T) {
	var fields []string
	jsonFields(reflect.TypeOf(statusJSON{}), "", &fields)
	jsonFields(reflect.TypeOf(statusUserJSON{}), "", &fields)
	slices.Sort(fields)
	fields = slices.Compact(fields)
	var docs []string
	for _, f := range statusFields {
		if slices.Contains(docs, f.path) {
			t.Errorf("statusFields has %s twice", f.path)
		}
		docs = append(docs, f.path)
	}
	for _, f := range fields {
		if !slices.Contains(docs, f) {
			t.Errorf("status --json prints %s, which statusFields (internal/app/statusdocs.go, the man page's JSON OUTPUT) does not document: add a row for it", f)
		}
	}
	for _, d := range docs {
		if !slices.Contains(fields, d) {
			t.Errorf("statusFields documents %s, which status --json does not print: drop its row, or print it", d)
		}
	}
}

// status shows a kept build as kept, not lacking: its kernel is complete,
// status exits 0, and the text and --json carry the build, why its newer
// version is not installed, and the space kept builds take.
func TestStatusKept(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no program of the machine's
	root := t.TempDir()
	p := paths.New(root)
	const k = "6.1.0-56-amd64"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(p.KernelHeaders(k), "include"), 0o755))
	for _, v := range []string{"1.0", "2.0"} {
		dir := filepath.Join(p.DKMSTree(), "wifi", v)
		must(os.MkdirAll(dir, 0o755))
		must(os.Symlink("/usr/src/wifi-"+v, filepath.Join(dir, "source")))
	}
	must(os.Symlink("1.0/"+k+"/x86_64", filepath.Join(p.DKMSTree(), "wifi", "kernel-"+k+"-x86_64")))
	var errOut bytes.Buffer
	st, err := state.Open(p, true, report.New(&errOut))
	must(err)
	log := "/var/log/dkms-guard/" + k + "/wifi-2.0.log"
	all := &state.Results{Schema: state.Schema}
	all.Put(state.Result{Kernel: k, Module: "wifi", Version: "2.0", Outcome: state.Failed, Exit: 2, Reason: "exit 2", Log: log, Severity: state.SevError})
	must(st.Save(state.ResultsFile, all))
	must(st.Save(state.KeptFile, &state.Kept{Schema: state.Schema, Builds: []state.KeptBuild{
		{Module: "wifi", Version: "1.0", Kernel: k, Why: state.KeptForUpgrade, Archive: "wifi-1.0.tar.gz", Size: 2048, Source: true,
			PutBack: time.Unix(1, 0).UTC(), Failed: "2.0", FailedLog: log},
	}}))
	st.Close()

	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		ce := &cmdEnv{rep: report.New(&errOut), stdout: &out, stderr: &errOut}
		err := newApp("", ce).RunContext(context.Background(), append([]string{"dkms-guard", "--root", root, "status"}, args...))
		return out.String(), err
	}
	text, err := run()
	must(err)
	for _, l := range []string{
		"  " + k + ": has wifi/1.0\n",
		"    kept an older version wifi/1.0: wifi/2.0 FAILED (exit 2), log " + log + "\n",
		"Kept builds: 1 (1 of them put back), 2.0 KiB in /var/lib/dkms-guard/kept\n",
	} {
		if !strings.Contains(text, l) {
			t.Errorf("status lacks %q:\n%s", l, text)
		}
	}
	if strings.Contains(text, "lacks") {
		t.Errorf("a kept build is lacking:\n%s", text)
	}

	out, err := run("--json")
	must(err)
	var got struct {
		Failed  bool `json:"failed"`
		Kernels []struct {
			Missing []any `json:"missing"`
			Kept    []struct {
				Module, Version, Why, Reason, Log string
				Failed                            string `json:"failed_version"`
			} `json:"kept"`
		} `json:"kernels"`
		Kept struct {
			Dir     string `json:"dir"`
			Builds  int    `json:"builds"`
			PutBack int    `json:"put_back"`
			Bytes   int64  `json:"bytes"`
		} `json:"kept"`
	}
	must(json.Unmarshal([]byte(out), &got))
	if got.Failed || len(got.Kernels) != 1 || len(got.Kernels[0].Missing) != 0 || len(got.Kernels[0].Kept) != 1 {
		t.Fatalf("status --json:\n%s", out)
	}
	kept := got.Kernels[0].Kept[0]
	if kept.Module != "wifi" || kept.Version != "1.0" || kept.Failed != "2.0" || kept.Reason != "build_failed" || kept.Log != log ||
		kept.Why != "FAILED (exit 2), log "+log {
		t.Errorf("kernels[].kept[]: %+v", kept)
	}
	if got.Kept.Dir != "/var/lib/dkms-guard/kept" || got.Kept.Builds != 1 || got.Kept.PutBack != 1 || got.Kept.Bytes != 2048 {
		t.Errorf("kept: %+v", got.Kept)
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr:\n%s", errOut.String())
	}
}
