package metrics

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("u", false, "rewrite testdata/*.prom with the actual output")

// golden compares got with testdata/name, or rewrites it with -u.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -u to rewrite it):\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

var when = time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)

// A pinned machine with a failed and a timed-out module, odd names
// escaped, a repeated series written once.
func TestTextPinned(t *testing.T) {
	s := Snapshot{
		Missing: []Missing{
			{Kernel: "6.1.0-56-amd64", Module: "critmod", Version: "1.0", Reason: "build_failed"},
			{Kernel: "6.1.0-56-amd64", Module: "critmod", Version: "1.0", Reason: "build_failed"},
			{Kernel: "6.1.0-56-amd64", Module: "slow", Version: "2.0", Reason: "timed_out"},
			{Kernel: "6.1.0-56-amd64", Module: "q\"b\\n\nl", Version: "bad\xff", Reason: "not_built"},
		},
		Pinned: "6.1.0-47-amd64", Newest: "6.1.0-56-amd64",
		LastRun: when,
	}
	golden(t, "pinned.prom", s.Text())
}

// Older builds put back in place of a newer version: one series each, odd
// names escaped as the other series' are, a repeated series written once;
// the last run failed (the caller says so: a newer version failed).
func TestTextKept(t *testing.T) {
	s := Snapshot{
		Kept: []Kept{
			{Kernel: "6.1.0-56-amd64", Module: "wifi", Version: "1.0", Failed: "2.0"},
			{Kernel: "6.1.0-47-amd64", Module: "wifi", Version: "1.0", Failed: "2.0"},
			{Kernel: "6.1.0-47-amd64", Module: "wifi", Version: "1.0", Failed: "2.0"},
			{Kernel: "6.1.0-56-amd64", Module: "q\"b\\n\nl", Version: "1", Failed: "bad\xff"},
		},
		LastRun: when,
	}
	golden(t, "kept.prom", s.Text())
}

// All well: no module series, not pinned, the last run a success.
func TestTextAllWell(t *testing.T) {
	golden(t, "all-well.prom", Snapshot{LastRun: when, Success: true}.Text())
}

// The file is written only into an existing directory, whole, 0644, and
// replaced on the next write.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	absent := filepath.Join(dir, "node-exporter")
	if err := Write(absent, Snapshot{LastRun: when}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(absent); !os.IsNotExist(err) {
		t.Fatalf("created the missing directory: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(absent, 0o755))
	old := Snapshot{Missing: []Missing{{Kernel: "k", Module: "m", Version: "1", Reason: "build_failed"}}, LastRun: when}
	must(Write(absent, old))
	now := Snapshot{LastRun: when.Add(time.Hour), Success: true}
	must(Write(absent, now))
	data, err := os.ReadFile(filepath.Join(absent, FileName))
	must(err)
	if string(data) != string(now.Text()) {
		t.Errorf("file:\n%s", data)
	}
	fi, err := os.Stat(filepath.Join(absent, FileName))
	must(err)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	ents, err := os.ReadDir(absent)
	must(err)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
