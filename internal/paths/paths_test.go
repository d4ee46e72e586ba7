package paths

import (
	"strings"
	"testing"
)

func TestSafeName(t *testing.T) {
	for _, in := range []string{"hello", "6.1.0-56-amd64", "1.0+dfsg1"} {
		if got := SafeName(in); got != in {
			t.Errorf("SafeName(%q) = %q, want it unchanged", in, got)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{"my mod", "my_mod", "my\tmod", "../etc", "..", ".", "", "a/b", "x\xff", "1.0+dfsg~1", "my_mod~"} {
		got := SafeName(in)
		if strings.ContainsAny(got, "/ \t\n") || got == "." || got == ".." || got == "" {
			t.Errorf("SafeName(%q) = %q is not one safe component", in, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("SafeName(%q) = SafeName(%q) = %q", in, other, got)
		}
		seen[got] = in
	}
}

func TestRootAndRel(t *testing.T) {
	p := New("/tmp/r/")
	if got := p.StateDir(); got != "/tmp/r/var/lib/dkms-guard" {
		t.Errorf("StateDir = %s", got)
	}
	if got := p.Rel(p.BuildLog("k", "m", "1")); got != "/var/log/dkms-guard/k/m-1.log" {
		t.Errorf("Rel = %s", got)
	}
	if got := New("").Rel("/var/lib/dkms"); got != "/var/lib/dkms" {
		t.Errorf("root / Rel = %s", got)
	}
}
