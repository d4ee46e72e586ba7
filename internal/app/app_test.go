package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dkms-guard/dkms-guard/internal/config"
	"github.com/dkms-guard/dkms-guard/internal/lock"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/report"
	"github.com/dkms-guard/dkms-guard/internal/state"
)

// The one exit-code function, command by command and error by error.
func TestExitCodes(t *testing.T) {
	trouble := fmt.Errorf("reading dkms tree: %w", os.ErrPermission)
	unsafe := fmt.Errorf("opening: %w", state.ErrUnsafe)
	lock := fmt.Errorf("recording: %w", lock.ErrTimeout)
	usage := usageErr(errors.New("takes no arguments"))
	failures := errors.Join(errFailures, errReported)
	cases := []struct {
		command string
		err     error
		want    int
	}{
		{"status", nil, exitOK},
		{"status", failures, exitFailures},
		{"status", usage, exitUsage},
		{"status", unsafe, exitTrouble},
		{"status", trouble, exitTrouble},
		{"rebuild", failures, exitFailures},
		{"rebuild", lock, exitTrouble},
		{"rebuild", errReported, exitTrouble}, // a panic
		{"unpin", nil, exitOK},
		{"unpin", trouble, exitTrouble},
		{"", usage, exitUsage}, // no command, unknown command
	}
	for h := range hooks {
		cases = append(cases,
			struct {
				command string
				err     error
				want    int
			}{h, nil, exitOK},
			struct {
				command string
				err     error
				want    int
			}{h, usage, exitUsage},
		)
		for _, err := range []error{trouble, unsafe, lock, errReported} {
			cases = append(cases, struct {
				command string
				err     error
				want    int
			}{h, err, exitOK})
		}
	}
	for _, tc := range cases {
		if got := exitCode(tc.command, tc.err); got != tc.want {
			t.Errorf("exitCode(%q, %v) = %d, want %d", tc.command, tc.err, got, tc.want)
		}
	}
}

// settingsTable is every setting internal/config reads, and no other: a
// file that may set any variable makes config warn about each one it reads.
func TestSettingsRead(t *testing.T) {
	p := paths.New(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(p.Defaults()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Defaults(), []byte(". /etc/dkms-guard.local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	config.Load(p, report.New(&out))
	var read []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		rest, ok := strings.CutPrefix(line, "W: dkms-guard: ignored ")
		name, _, _ := strings.Cut(rest, " ")
		if !ok || name == "" {
			t.Fatalf("config.Load warned %q, not of one setting", line)
		}
		read = append(read, name)
	}
	var table []string
	for _, s := range settingsTable {
		table = append(table, s.name)
	}
	slices.Sort(read)
	slices.Sort(table)
	if !slices.Equal(read, table) {
		t.Errorf("internal/config reads %v, settingsTable has %v: add a row to settingsTable for each setting config reads, and drop those it does not", read, table)
	}
}

// The shipped /etc/default/dkms-guard assigns each setting its default, in
// settingsTable's order, and nothing else.
func TestSettingsShipped(t *testing.T) {
	data, err := os.ReadFile("../../default/dkms-guard")
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			got = append(got, line)
		}
	}
	for _, s := range settingsTable {
		want = append(want, fmt.Sprintf("%s=%q", s.name, s.def))
	}
	if !slices.Equal(got, want) {
		t.Errorf("default/dkms-guard assigns\n\t%s\nwant settingsTable's defaults\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// README.md shows settingsTable, row for row; the man page is the one home
// of the other tables.
func TestREADMESettings(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := settingsMarkdown(); !strings.Contains(string(data), want) {
		t.Errorf("README.md lacks the settings table; it must read:\n%s", want)
	}
}

// settingsMarkdown is settingsTable as README.md shows it.
func settingsMarkdown() string {
	var b strings.Builder
	b.WriteString("| setting | default | meaning |\n| --- | --- | --- |\n")
	for _, s := range settingsTable {
		def := s.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", s.name, def, s.meaning)
	}
	return b.String()
}

// The man page renders without warnings and has its sections.
func TestManPage(t *testing.T) {
	man := Man("1.0")
	for _, section := range []string{".SH NAME", ".SH SYNOPSIS", ".SH COMMANDS", ".SS rebuild", ".SH SETTINGS", ".SH MESSAGES",
		".SH EXIT STATUS", ".SH ENVIRONMENT", ".SH FILES", ".SH JSON OUTPUT", ".SH EXAMPLES", ".SH SEE ALSO"} {
		if !strings.Contains(man, "\n"+section+"\n") {
			t.Errorf("no %q", section)
		}
	}
	// Text never starts a line with . or ': roff would take it for a request.
	requests := map[string]bool{`.\"`: true, ".TH": true, ".SH": true, ".SS": true, ".PP": true, ".TP": true, ".B": true,
		".BR": true, ".RB": true, ".RI": true, ".I": true, ".RS": true, ".RE": true, ".nf": true, ".fi": true, ".nh": true, ".ad": true}
	for i, line := range strings.Split(man, "\n") {
		req, _, _ := strings.Cut(line, " ")
		if strings.HasPrefix(line, "'") || (strings.HasPrefix(line, ".") && !requests[req]) {
			t.Errorf("line %d starts with a roff request dkms-guard-docs does not write: %q", i+1, line)
		}
	}
}

// dkms-guard's own bugs must never fail apt: a panicking hook becomes one
// E: line and exit 0; a panicking person's command exits 3.
func TestGuardRecoversPanic(t *testing.T) {
	for _, tc := range []struct {
		command string
		want    int
	}{{"post-invoke", exitOK}, {"status", exitTrouble}} {
		var out bytes.Buffer
		ce := &cmdEnv{rep: report.New(&out)}
		err := ce.guard(func(*cli.Context) error { panic("boom") })(&cli.Context{Command: &cli.Command{Name: tc.command}})
		if !errors.Is(err, errReported) {
			t.Fatalf("err = %#v", err)
		}
		if got := exitCode(ce.command, err); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.command, got, tc.want)
		}
		if !strings.HasPrefix(out.String(), "E: dkms-guard: BUG: dkms-guard "+tc.command+" panicked: boom;") {
			t.Errorf("output %q", out.String())
		}
	}
}

// A panic's stack goes to a crash file in the log directory, named in the
// E: line; a log directory that is a link is not written through.
func TestGuardCrashLog(t *testing.T) {
	for _, link := range []bool{false, true} {
		root, elsewhere := t.TempDir(), t.TempDir()
		p := paths.New(root)
		if link {
			if err := os.MkdirAll(filepath.Dir(p.LogDir()), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, p.LogDir()); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		ce := &cmdEnv{rep: report.New(&out), paths: p}
		ce.guard(func(*cli.Context) error { panic("boom") })(&cli.Context{Command: &cli.Command{Name: "post-invoke"}})
		crashes, _ := filepath.Glob(filepath.Join(p.LogDir(), "crash-*.txt"))
		switch {
		case link && (len(crashes) != 0 || !strings.HasSuffix(out.String(), "please report this with its stack trace\n")):
			t.Errorf("through a link: %v\n%s", crashes, out.String())
		case !link && (len(crashes) != 1 || !strings.Contains(out.String(), "please report this with /var/log/dkms-guard/crash-")):
			t.Errorf("crash files %v\n%s", crashes, out.String())
		}
	}
}
