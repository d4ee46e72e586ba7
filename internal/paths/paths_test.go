package paths

import "testing"

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"hello": "hello", "6.1.0-56-amd64": "6.1.0-56-amd64", "../etc": ".._etc",
		"..": "__", "a/b c": "a_b_c", "": "_",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
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
