package report

import (
	"bytes"
	"testing"
)

func TestPrefixes(t *testing.T) {
	var b bytes.Buffer
	r := New(&b)
	r.Errorf("a %s", "b")
	r.Warnf("two\nlines")
	r.Notef("note")
	want := "E: dkms-guard: a b\nW: dkms-guard: two\nW: dkms-guard: lines\nN: dkms-guard: note\n"
	if b.String() != want {
		t.Errorf("got %q", b.String())
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"hello":          "hello",
		"6.1.0-56-amd64": "6.1.0-56-amd64",
		"a b":            `"a b"`,
		"x\nW: y":        `"x\nW: y"`,
		"":               `""`,
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"exit 10":                   "exit 10",
		"BUILD_EXCLUSIVE=\"^5\\.\"": "BUILD_EXCLUSIVE=\"^5\\.\"",
		"née à Zürich":              "née à Zürich",
		"two\nlines":                `"two\nlines"`,
		"\x1b[2J":                   `"\x1b[2J"`,
		"tab\there":                 `"tab\there"`,
		"bad \xff":                  `"bad \xff"`,
		"\u202eevil":                `"\u202eevil"`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %s, want %s", in, got, want)
		}
	}
}
