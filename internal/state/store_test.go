package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/lock"
	"github.com/dkms-guard/dkms-guard/internal/paths"
)

type warnings []string

func (w *warnings) Warnf(format string, args ...any) { *w = append(*w, fmt.Sprintf(format, args...)) }

// rooted returns a root whose state directory is made by mk (nothing
// when mk is nil), and that directory.
func rooted(t *testing.T, mk func(dir string)) (paths.Paths, string) {
	t.Helper()
	p := paths.New(t.TempDir())
	must(t, os.MkdirAll(filepath.Dir(p.StateDir()), 0o755))
	if mk != nil {
		mk(p.StateDir())
	}
	return p, p.StateDir()
}

func open(t *testing.T) (*Store, string, *warnings) {
	t.Helper()
	p, dir := rooted(t, nil)
	w := &warnings{}
	st, err := Open(p, true, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir, w
}

func TestSaveLoadModes(t *testing.T) {
	st, dir, w := open(t)
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %o", fi.Mode().Perm())
	}
	rs := &Results{Schema: Schema}
	rs.Put(Result{Kernel: "k2", Module: "b", Outcome: Failed})
	rs.Put(Result{Kernel: "k1", Module: "a", Outcome: Installed})
	rs.Put(Result{Kernel: "k2", Module: "b", Outcome: Installed})
	if err := st.Save(ResultsFile, rs); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(filepath.Join(dir, ResultsFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %o", fi.Mode().Perm())
	}
	var got Results
	ok, err := st.Load(ResultsFile, &got)
	if !ok || err != nil {
		t.Fatalf("load: %v %v", ok, err)
	}
	if len(got.Results) != 2 || got.Results[0].Kernel != "k1" || got.Results[1].Outcome != Installed {
		t.Errorf("results = %+v", got.Results)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
	if len(*w) != 0 {
		t.Errorf("warnings: %q", *w)
	}
}

func TestCorruptMovedAside(t *testing.T) {
	for name, data := range map[string]string{
		"torn":   `{"schema": 1, "res`,
		"future": `{"schema": 2, "results": []}`,
		"layout": `{"schema": 1, "results": "nope"}`,
	} {
		t.Run(name, func(t *testing.T) {
			st, dir, w := open(t)
			st.now = func() time.Time { return time.Unix(1700000000, 0) }
			must(t, os.WriteFile(filepath.Join(dir, ResultsFile), []byte(data), 0o600))
			var rs Results
			ok, err := st.Load(ResultsFile, &rs)
			if ok || err != nil {
				t.Fatalf("load = %v, %v; want safe default", ok, err)
			}
			if len(*w) != 1 || !strings.Contains((*w)[0], "results.json.corrupt-1700000000") {
				t.Errorf("warnings = %q", *w)
			}
			kept, err := os.ReadFile(filepath.Join(dir, ResultsFile+".corrupt-1700000000"))
			if err != nil || string(kept) != data {
				t.Errorf("corrupt file not kept intact: %q %v", kept, err)
			}
		})
	}
}

func TestUnsafeDirectory(t *testing.T) {
	link, _ := rooted(t, func(dir string) { must(t, os.Symlink(t.TempDir(), dir)) })
	if _, err := Open(link, true, nil); !errors.Is(err, ErrUnsafe) {
		t.Errorf("symlink: %v", err)
	}
	file, _ := rooted(t, func(dir string) { must(t, os.WriteFile(dir, nil, 0o600)) })
	if _, err := Open(file, true, nil); !errors.Is(err, ErrUnsafe) {
		t.Errorf("file: %v", err)
	}
	absent, _ := rooted(t, nil)
	if _, err := Open(absent, false, nil); !errors.Is(err, ErrNoState) {
		t.Errorf("absent: %v", err)
	}
	loose, dir := rooted(t, func(dir string) { must(t, os.Mkdir(dir, 0o755)) })
	w := &warnings{}
	st, err := Open(loose, false, w)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 || len(*w) != 1 {
		t.Errorf("loose dir not tightened with a warning: %o %q", fi.Mode().Perm(), *w)
	}
}

func TestLockExcludes(t *testing.T) {
	st, dir, _ := open(t)
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(paths.New(filepath.Dir(filepath.Dir(filepath.Dir(dir)))), false, nil) // dir is ROOT/var/lib/dkms-guard
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := other.Lock(ctx); !errors.Is(err, lock.ErrTimeout) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	u2, err := other.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestResults(t *testing.T) {
	rs := &Results{}
	rs.Put(Result{Run: "r1", Kernel: "k1", Module: "a", Outcome: Failed, Severity: SevWarning})
	rs.Put(Result{Run: "r2", Kernel: "k1", Module: "b", Outcome: Skipped, Severity: SevNone})
	rs.Put(Result{Run: "", Kernel: "k2", Module: "a", Outcome: Installed})
	if got := rs.ForRun("r1", "r2", ""); len(got) != 2 {
		t.Errorf("ForRun = %+v", got)
	}
	if r, _ := rs.Get("k1", "a"); !r.Missing() {
		t.Error("a failure is not missing")
	}
	if r, _ := rs.Get("k1", "b"); r.Missing() {
		t.Error("a skip without severity (no headers) counts as missing")
	}
	if n := rs.ForgetKernel("k1"); n != 2 || len(rs.Results) != 1 {
		t.Errorf("ForgetKernel = %d, left %+v", n, rs.Results)
	}
}

// A store opened read-only (status) never writes: no chmod, no corrupt file
// moved aside, no lock, no save.
func TestReadOnlyNeverWrites(t *testing.T) {
	p, dir := rooted(t, func(dir string) { must(t, os.Mkdir(dir, 0o755)) })
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &warnings{}
	st, err := OpenReadOnly(p, w)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode changed to %o", fi.Mode().Perm())
	}
	rs, err := st.LoadResults()
	if err != nil || len(rs.Results) != 0 || len(*w) != 1 {
		t.Errorf("load: %+v %v %q", rs, err, *w)
	}
	if _, err := os.Stat(filepath.Join(dir, ResultsFile)); err != nil {
		t.Errorf("corrupt file moved: %v", err)
	}
	if err := st.Save(ResultsFile, rs); !errors.Is(err, ErrReadOnly) {
		t.Errorf("save: %v", err)
	}
	if _, err := st.Lock(context.Background()); !errors.Is(err, ErrReadOnly) {
		t.Errorf("lock: %v", err)
	}
	absent, _ := rooted(t, nil)
	if _, err := OpenReadOnly(absent, w); !errors.Is(err, ErrNoState) {
		t.Errorf("absent: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files: %v", ents)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// A symlink planted as a state or lock file is moved aside with a warning,
// once; the run goes on (issue 8, defect 6).
func TestSymlinkedFilesMovedAside(t *testing.T) {
	st, dir, w := open(t)
	outside := filepath.Join(t.TempDir(), "outside.json")
	must(t, os.WriteFile(outside, []byte(`{"schema": 1, "results": []}`), 0o600))
	must(t, os.Symlink(outside, filepath.Join(dir, RunFile)))
	must(t, os.Symlink(outside, filepath.Join(dir, "lock")))
	var run Run
	if ok, err := st.Load(RunFile, &run); ok || err != nil {
		t.Fatalf("load: %v %v", ok, err)
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if len(*w) != 2 || !strings.Contains((*w)[0], "run.json: it was a symlink") || !strings.Contains((*w)[1], "lock: it was a symlink") {
		t.Errorf("warnings: %q", *w)
	}
	if data, _ := os.ReadFile(outside); string(data) != `{"schema": 1, "results": []}` {
		t.Errorf("the link's target was touched: %q", data)
	}
	// The next run is clean.
	*w = nil
	if _, err := st.Load(RunFile, &run); err != nil || len(*w) != 0 {
		t.Errorf("second load: %v %q", err, *w)
	}
}

// The build lock's note survives its holder's death and is cleared by
// Unlock: how a build left running by a killed dkms-guard is found.
// A results.json written before Cause existed loads, every result of it
// with no cause.
func TestResultsWithoutCause(t *testing.T) {
	var rs Results
	must(t, json.Unmarshal([]byte(`{"schema":1,"results":[{"kernel":"k","module":"m","version":"1","outcome":"skipped","reason":"its BUILD_DEPENDS x was not installed","by":"post-invoke","time":"2026-01-01T00:00:00Z"}]}`), &rs))
	if len(rs.Results) != 1 || rs.Results[0].Cause != CauseNone || rs.Results[0].Outcome != Skipped {
		t.Errorf("%+v", rs.Results)
	}
	data, err := json.Marshal(Result{Kernel: "k", Module: "m", Outcome: Skipped, Cause: CauseBuildDepends})
	must(t, err)
	var back Result
	must(t, json.Unmarshal(data, &back))
	if back.Cause != CauseBuildDepends {
		t.Errorf("cause after a round trip: %q", back.Cause)
	}
}

// A name dkms accepts but JSON cannot hold comes back as it was.
func TestOddNamesRoundTrip(t *testing.T) {
	st, _, _ := open(t)
	odd := "wi\xfffi"
	rs := &Results{Schema: Schema}
	rs.Put(Result{Kernel: "6.1.0-56-amd64", Module: odd, Version: "1\xfe", Outcome: Failed})
	rs.Put(Result{Kernel: "k", Module: "\x00base64:looks-encoded", Outcome: Failed})
	must(t, st.Save(ResultsFile, rs))
	got, err := st.LoadResults()
	must(t, err)
	if r, ok := got.Get("6.1.0-56-amd64", odd); !ok || r.Version != "1\xfe" {
		t.Errorf("results = %+v", got.Results)
	}
	if _, ok := got.Get("k", "\x00base64:looks-encoded"); !ok {
		t.Errorf("a name that looks encoded changed: %+v", got.Results)
	}
	run := &Run{Schema: Schema, Snapshot: []Module{{Name: odd, Version: "1", Kernels: []string{"k\xff"}}}}
	must(t, st.Save(RunFile, run))
	var back Run
	if ok, err := st.Load(RunFile, &back); !ok || err != nil || back.Snapshot[0].Name != odd || back.Snapshot[0].Kernels[0] != "k\xff" {
		t.Errorf("snapshot = %+v (%v %v)", back.Snapshot, ok, err)
	}
}

// FuzzLoad: whatever bytes a state file holds, Load never panics, never
// fails for a readable file, and a file it refuses is kept aside, intact.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"schema": 1, "results": [{"kernel": "k", "module": "m", "version": "1", "outcome": "failed"}]}`))
	f.Add([]byte(`{"schema": 1, "id": "r", "apt": {"pid": 1, "start": 2}, "snapshot": [{"name": "\u0000base64:/w==", "version": "1"}]}`))
	f.Add([]byte(`{"schema": 2}`))
	f.Add([]byte(`{"schema": 1, "res`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, dir, _ := open(t)
		for _, name := range []string{ResultsFile, RunFile, BootFile} {
			must(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
		}
		var rs Results
		var run Run
		var boot Boot
		for name, v := range map[string]any{ResultsFile: &rs, RunFile: &run, BootFile: &boot} {
			ok, err := st.Load(name, v)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !ok {
				ents, _ := os.ReadDir(dir)
				kept := false
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), name+".corrupt-") {
						got, _ := os.ReadFile(filepath.Join(dir, e.Name()))
						kept = kept || bytes.Equal(got, data)
					}
				}
				if !kept {
					t.Fatalf("%s refused but not kept aside intact", name)
				}
			}
		}
	})
}

// Two corrupt copies in one second are both kept.
func TestCorruptKeptTwice(t *testing.T) {
	st, dir, _ := open(t)
	st.now = func() time.Time { return time.Unix(1700000000, 0) }
	for _, data := range []string{"first", "second"} {
		must(t, os.WriteFile(filepath.Join(dir, ResultsFile), []byte(data), 0o600))
		if _, err := st.LoadResults(); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, ResultsFile+".corrupt-1700000000"))
	b, _ := os.ReadFile(filepath.Join(dir, ResultsFile+".corrupt-1700000000.2"))
	if string(a) != "first" || string(b) != "second" {
		t.Errorf("kept %q and %q", a, b)
	}
}
