package shellconf

import (
	"errors"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// hostile are fragments whose nesting the parser follows by recursion,
// each made of n repetitions of its unit.
var hostile = []struct{ name, head, unit, tail string }{
	{"command substitution", "A=", "$(", ""},
	{"subshell", "", "(", ""},
	{"brace group", "", "{ ", ""},
	{"parameter default", "A=", "${a:-", ""},
	{"quoted substitution", "A=", `"$(`, ""},
	{"if", "", "if a;then ", ""},
	{"test negation", "[[ ", "! ", "a ]]"},
	{"test and", "[[ ", "a && ", "a ]]"},
	{"arithmetic parens", "A=$((", "(", ""},
	{"arithmetic minus", "A=$((", "- ", "1))"},
	{"arithmetic assignment", "A=$((", "a=", "1))"},
	{"time", "", "time ", "a"},
	{"heredoc", "", "a <<E $(\n", ""},
}

// TestDeepNesting parses 1 MiB of each hostile fragment in a child whose
// stack is limited to stackLimit (the race detector's frames included):
// before the bound, the parser's recursion is a fatal stack overflow that
// kills the hook, which no recover can catch. It also parses each one just
// inside the bound, which must fit.
func TestDeepNesting(t *testing.T) {
	if os.Getenv("SHELLCONF_NESTING_CHILD") == "1" {
		deepNestingChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeepNesting$", "-test.v")
	cmd.Env = append(os.Environ(), "SHELLCONF_NESTING_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, head(out))
	}
}

const stackLimit = 64 << 20

func deepNestingChild(t *testing.T) {
	debug.SetMaxStack(stackLimit)
	for _, h := range hostile {
		big := h.head + strings.Repeat(h.unit, (1<<20)/len(h.unit)) + h.tail
		if _, err := Parse(strings.NewReader(big), "deep.conf"); !errors.Is(err, ErrTooComplex) {
			t.Errorf("%s, 1 MiB: got %v, want ErrTooComplex", h.name, err)
		}
		// Just inside the bound: parsed (to an error or not), no overflow.
		k := (MaxStructure - structure([]byte(h.head+h.tail))) / structure([]byte(h.unit))
		fit := h.head + strings.Repeat(h.unit, k) + h.tail
		if structure([]byte(fit)) > MaxStructure || structure([]byte(h.head+strings.Repeat(h.unit, k+1)+h.tail)) <= MaxStructure {
			t.Fatalf("%s: %d units are not the most the bound allows", h.name, k)
		}
		if _, err := Parse(strings.NewReader(fit), "fit.conf"); errors.Is(err, ErrTooComplex) {
			t.Errorf("%s, %d tokens: refused, want parsed", h.name, structure([]byte(fit)))
		}
	}
}

// head keeps a crash's first lines, which name it, not its goroutine dump.
func head(b []byte) []byte {
	if len(b) > 1000 {
		return b[:1000]
	}
	return b
}
