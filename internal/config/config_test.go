package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

type warnings []string

func (w *warnings) Warnf(format string, args ...any) { *w = append(*w, fmt.Sprintf(format, args...)) }

func load(t *testing.T, content string) (Settings, warnings) {
	t.Helper()
	p := paths.New(t.TempDir())
	if content != "" {
		if err := os.MkdirAll(filepath.Dir(p.Defaults()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p.Defaults(), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var w warnings
	return Load(p, &w), w
}

func TestLoad(t *testing.T) {
	s, w := load(t, "")
	if !reflect.DeepEqual(s, Defaults()) || len(w) != 0 {
		t.Errorf("no file: %+v %q", s, w)
	}
	s, w = load(t, "CRITICAL_MODULES=\"zfs  mydrv\"\nNOT_CRITICAL_MODULES=nvidia\nMANAGE_BOOT_ENTRY=no\n")
	if !reflect.DeepEqual(s, Settings{Critical: []string{"zfs", "mydrv"}, NotCritical: []string{"nvidia"}, KeepBuilds: true, MetricsDir: DefaultMetricsDir}) || len(w) != 0 {
		t.Errorf("settings: %+v %q", s, w)
	}
	s, w = load(t, "KEEP_WORKING_BUILDS=no\n")
	if s.KeepBuilds || !s.ManageBoot || len(w) != 0 {
		t.Errorf("KEEP_WORKING_BUILDS=no: %+v %q", s, w)
	}
	s, w = load(t, "KEEP_WORKING_BUILDS=maybe\n")
	if !s.KeepBuilds || len(w) != 1 {
		t.Errorf("KEEP_WORKING_BUILDS=maybe: %+v %q", s, w)
	}
}

// A bad or unreadable setting is a warning and the default, never an error.
func TestLoadBadSettings(t *testing.T) {
	for name, content := range map[string]string{
		"bad value":    "MANAGE_BOOT_ENTRY=maybe\n",
		"expansion":    "MANAGE_BOOT_ENTRY=$X\n",
		"syntax error": "MANAGE_BOOT_ENTRY=\"no\n",
	} {
		s, w := load(t, content)
		if !s.ManageBoot || len(w) != 1 || !strings.Contains(w[0], "/etc/default/dkms-guard") {
			t.Errorf("%s: %+v %q", name, s, w)
		}
	}
}

func TestJobs(t *testing.T) {
	for val, want := range map[string]int{"": 0, "auto": 0, " AUTO ": 0, "1": 1, "4": 4, "64": 64} {
		if n, err := ParseJobs(val); err != nil || n != want {
			t.Errorf("ParseJobs(%q) = %d, %v; want %d", val, n, err, want)
		}
	}
	for _, val := range []string{"0", "65", "-1", "two", "2.5", "1e3"} {
		if _, err := ParseJobs(val); err == nil {
			t.Errorf("ParseJobs(%q) took it", val)
		}
	}
	s, w := load(t, "JOBS=3\n")
	if s.Jobs != 3 || len(w) != 0 {
		t.Errorf("JOBS=3: %+v %q", s, w)
	}
	s, w = load(t, "JOBS=lots\n")
	if s.Jobs != 0 || len(w) != 1 || !strings.Contains(w[0], "ignored JOBS in /etc/default/dkms-guard") {
		t.Errorf("JOBS=lots: %+v %q", s, w)
	}
}

// KEEP_KERNEL_FOR takes three values; anything else is one warning and
// the default, in-use.
func TestKeepFor(t *testing.T) {
	for val, want := range map[string]KeepFor{
		"":                KeepInUse,
		"in-use\n":        KeepInUse,
		" Boot-Critical ": KeepBootCritical,
		"nothing":         KeepNothing,
	} {
		s, w := load(t, "KEEP_KERNEL_FOR=\""+val+"\"\n")
		if s.KeepFor != want || len(w) != 0 {
			t.Errorf("KEEP_KERNEL_FOR=%q: %v %q, want %v", val, s.KeepFor, w, want)
		}
	}
	s, w := load(t, "KEEP_KERNEL_FOR=boot\n")
	if s.KeepFor != KeepInUse || len(w) != 1 || !strings.Contains(w[0], `ignored KEEP_KERNEL_FOR in /etc/default/dkms-guard: "boot" is not in-use, boot-critical or nothing; using in-use`) {
		t.Errorf("KEEP_KERNEL_FOR=boot: %v %q", s.KeepFor, w)
	}
	if Defaults().KeepFor.String() != "in-use" {
		t.Errorf("default %v, want in-use", Defaults().KeepFor)
	}
}

// The shipped /etc/default/dkms-guard sets every setting to its default.
func TestShippedDefaults(t *testing.T) {
	data, err := os.ReadFile("../../default/dkms-guard")
	if err != nil {
		t.Fatal(err)
	}
	s, w := load(t, string(data))
	if len(s.Critical) == 0 && len(s.NotCritical) == 0 {
		s.Critical, s.NotCritical = nil, nil // set to "": empty lists
	}
	if !reflect.DeepEqual(s, Defaults()) || len(w) != 0 {
		t.Errorf("shipped file: %+v %q, want %+v", s, w, Defaults())
	}
}
