// Package plan reads what apt is about to do from its Pre-Install-Pkgs hook
// protocol, version 3 (apt.conf(5), "DPkg::Pre-Install-Pkgs").
//
// The input is "VERSION 3", then apt's configuration as "Name=Value" lines
// up to an empty line, then one line per dpkg action:
//
//	name old-version old-arch old-multiarch op new-version new-arch new-multiarch action
//
// where a missing version or arch is "-", op is "<", ">" or "=" (old against
// new), and action is the .deb file to unpack, **CONFIGURE** or **REMOVE**.
// A package appears once per action, so a plain upgrade shows two lines.
// Version 1 and 2 inputs are refused: apt sends them when the Version option
// is keyed on something other than the command's first word.
package plan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Kind is what happens to a package in this run.
type Kind string

const (
	Install   Kind = "install"
	Upgrade   Kind = "upgrade"
	Downgrade Kind = "downgrade"
	Reinstall Kind = "reinstall"
	Configure Kind = "configure" // only configured (it was unpacked earlier)
	Remove    Kind = "remove"
)

// Change is one package's fate in this run.
type Change struct {
	Package    string `json:"package"` // name without architecture
	Arch       string `json:"arch,omitempty"`
	OldVersion string `json:"old_version,omitempty"`
	NewVersion string `json:"new_version,omitempty"`
	Kind       Kind   `json:"kind"`
}

// Plan is every package change of one apt run.
type Plan struct {
	Changes []Change `json:"changes"`
	// Bad names each line that did not follow the protocol: it is left
	// out, the good lines are kept.
	Bad []string `json:"-"`
}

// ErrProtocol means the input does not follow protocol version 3.
var ErrProtocol = errors.New("unsupported apt hook protocol")

// ErrVersion means apt sent another protocol version: apt's
// DPkg::Tools::Options::<program>::Version is not set for the hook's
// first word. It wraps ErrProtocol.
var ErrVersion = fmt.Errorf("%w version", ErrProtocol)

// maxLine bounds one input line: a package line is short, but apt's
// configuration dump can carry long values.
const maxLine = 1 << 20

// Parse reads protocol version 3 from r. A package line that does not
// follow the protocol is left out and named in Plan.Bad; only a wrong
// header is an error. It reads r to its end whatever happens, so that apt
// never sees its pipe closed early.
func Parse(r io.Reader) (*Plan, error) {
	defer io.Copy(io.Discard, r)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading protocol header: %w", err)
		}
		return nil, fmt.Errorf("%w: empty input, expected \"VERSION 3\"", ErrVersion)
	}
	if first := strings.TrimSpace(sc.Text()); first != "VERSION 3" {
		return nil, fmt.Errorf("%w: got %q, expected \"VERSION 3\"", ErrVersion, clip(first))
	}
	// Configuration section, up to the first empty line.
	for sc.Scan() {
		if sc.Text() == "" {
			break
		}
	}
	byPkg := map[string]*Change{}
	var order []string
	var bad []string
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if strings.TrimSpace(raw) == "" {
			continue
		}
		f, ok := fields(raw)
		if !ok || (f[4] != "<" && f[4] != ">" && f[4] != "=") {
			bad = append(bad, fmt.Sprintf("package line %d: %q", lineNo, clip(raw)))
			continue
		}
		name, oldV, oldA, op, newV, newA, action := f[0], f[1], f[2], f[4], f[5], f[6], f[8]
		arch := newA
		if arch == "-" {
			arch = oldA
		}
		key := name + ":" + arch
		c, ok := byPkg[key]
		if !ok {
			c = &Change{Package: name, Arch: dash(arch), OldVersion: dash(oldV), NewVersion: dash(newV)}
			byPkg[key] = c
			order = append(order, key)
		}
		switch {
		case action == "**REMOVE**":
			c.Kind = Remove
		case action == "**CONFIGURE**":
			if c.Kind == "" {
				c.Kind = Configure
			}
		default: // a .deb to unpack
			switch {
			case oldV == "-":
				c.Kind = Install
			case op == "<":
				c.Kind = Upgrade
			case op == ">":
				c.Kind = Downgrade
			default:
				c.Kind = Reinstall
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading package lines: %w", err)
	}
	p := &Plan{Changes: make([]Change, 0, len(order)), Bad: bad}
	for _, k := range order {
		p.Changes = append(p.Changes, *byPkg[k])
	}
	sort.SliceStable(p.Changes, func(i, j int) bool { return p.Changes[i].Package < p.Changes[j].Package })
	return p, nil
}

// fields splits a package line into its nine fields: eight words, then
// the action, which is the rest of the line (a .deb's path may hold
// spaces: apt writes it as it is).
func fields(line string) ([]string, bool) {
	var f []string
	rest := strings.TrimLeft(line, " \t")
	for len(f) < 8 {
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			return nil, false
		}
		f = append(f, rest[:i])
		rest = strings.TrimLeft(rest[i:], " \t")
	}
	rest = strings.TrimRight(rest, " \t\r")
	if rest == "" {
		return nil, false
	}
	return append(f, rest), true
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
