package shellconf

import (
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, s string) *Vars {
	t.Helper()
	v, err := Parse(strings.NewReader(s), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValues(t *testing.T) {
	v := parse(t, `
# comment
NAME="wifi"   # trailing comment
VERSION='2.0'
PLAIN=yes
ESCAPED="a \"quoted\" word"
BACKSLASH=a\ b
MULTI="line one
line two"
export EXPORTED=1
LIST[0]="a"
LIST[1]="b c"
ARRAY=(one "two three")
`)
	for k, want := range map[string]string{
		"NAME": "wifi", "VERSION": "2.0", "PLAIN": "yes", "ESCAPED": `a "quoted" word`,
		"BACKSLASH": "a b", "MULTI": "line one\nline two", "EXPORTED": "1",
	} {
		if got := v.Get(k); got != want || !v.Known(k) {
			t.Errorf("%s = %q (known %v), want %q", k, got, v.Known(k), want)
		}
	}
	if got := v.List("LIST"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("LIST = %q", got)
	}
	if got := v.List("ARRAY"); !reflect.DeepEqual(got, []string{"one", "two", "three"}) {
		t.Errorf("ARRAY = %q", got)
	}
	if _, err := Parse(strings.NewReader(`OPEN="abc`), "x"); err == nil {
		t.Error("an open quote is not an error")
	}
}

// Later fragments override earlier ones, as sourcing in turn does.
func TestMerge(t *testing.T) {
	v := parse(t, "A=1\nB=$X\n")
	v.Merge(parse(t, "A=2\n"))
	if v.Get("A") != "2" || !v.Known("A") || v.Known("B") {
		t.Errorf("A=%q known %v, B known %v", v.Get("A"), v.Known("A"), v.Known("B"))
	}
	v.Merge(parse(t, "eval x\n"))
	if v.Known("A") {
		t.Error("a later eval leaves A known")
	}
}

// What dkms-guard cannot evaluate for certain is unknown, never a value:
// the decision is then dkms's (issue 5, defect 3; issue 8, defect 1).
func TestUnknown(t *testing.T) {
	cases := []struct {
		name, conf, variable string
		known                bool
	}{
		{"ansi-c quoting", `BUILD_EXCLUSIVE_KERNEL=$'^6\\.'`, "BUILD_EXCLUSIVE_KERNEL", false},
		{"conditional", "AUTOINSTALL=\"yes\"\nif [ \"$(uname -m)\" = \"s390x\" ]; then AUTOINSTALL=\"\"; fi\n", "AUTOINSTALL", false},
		{"conditional, other variables stay known", "A=1\nif [ x = y ]; then B=2; fi\n", "A", true},
		{"overridden after the conditional", "if [ x = y ]; then A=; fi\nA=yes\n", "A", true},
		{"heredoc", "AUTOINSTALL=yes\ncat <<EOF\nAUTOINSTALL=\nEOF\n", "AUTOINSTALL", false},
		{"eval", "AUTOINSTALL=yes\neval \"$X\"\n", "AUTOINSTALL", false},
		{"source", "AUTOINSTALL=yes\n. /etc/other\n", "AUTOINSTALL", false},
		{"command substitution", `OBSOLETE_BY="$(uname -r)"`, "OBSOLETE_BY", false},
		{"command substitution elsewhere", "MAKE=\"make -j$(nproc)\"\nAUTOINSTALL=yes\n", "AUTOINSTALL", true},
		{"parameter", `BUILD_EXCLUSIVE_KERNEL="^${X}"`, "BUILD_EXCLUSIVE_KERNEL", false},
		{"default assignment", "AUTOINSTALL=yes\n: ${AUTOINSTALL:=}\n", "AUTOINSTALL", false},
		{"append", "BUILD_DEPENDS=a\nBUILD_DEPENDS+=\" b\"\n", "BUILD_DEPENDS", false},
		{"export", "export AUTOINSTALL=yes\n", "AUTOINSTALL", true},
		{"function", "f() { AUTOINSTALL=; }\nAUTOINSTALL=yes\n", "AUTOINSTALL", true},
		{"function called", "f() { AUTOINSTALL=; }\nAUTOINSTALL=yes\nf\n", "AUTOINSTALL", false},
		{"subshell", "AUTOINSTALL=yes\n( AUTOINSTALL= )\n", "AUTOINSTALL", true},
		{"trailing literal dollar", `BUILD_EXCLUSIVE_KERNEL="^6\.1\..*$"`, "BUILD_EXCLUSIVE_KERNEL", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t, tc.conf)
			if got := c.Known(tc.variable); got != tc.known {
				t.Errorf("Known(%s) = %v, want %v (why: %q)", tc.variable, got, tc.known, c.Why(tc.variable))
			}
			if !tc.known && c.Why(tc.variable) == "" {
				t.Error("unknown without a reason")
			}
		})
	}
}
