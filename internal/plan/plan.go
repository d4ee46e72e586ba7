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
	"bytes"
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
	// Bad names the first lines that did not follow the protocol, BadMore
	// counts the others: they are left out, the good lines are kept.
	Bad     []string `json:"-"`
	BadMore int      `json:"-"`
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

// maxBad bounds the bad lines kept by name; the rest are counted.
const maxBad = 20

// Parse reads protocol version 3 from r; see ParseKeeping.
func Parse(r io.Reader) (*Plan, error) { return ParseKeeping(r, nil) }

// ParseKeeping reads protocol version 3 from r, keeping the changes of the
// packages keep accepts (nil: every package). A package line that does not
// follow the protocol is left out and named in Plan.Bad (the first few;
// BadMore counts the rest); only a wrong header is an error. It streams:
// the memory it needs grows with the packages kept, not with the input
// (a dist-upgrade announces thousands). It reads r to its end whatever
// happens, so that apt never sees its pipe closed early.
func ParseKeeping(r io.Reader, keep func(pkg []byte) bool) (*Plan, error) {
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
		if len(sc.Bytes()) == 0 {
			break
		}
	}
	byPkg := map[string]*Change{}
	var order []string
	p := &Plan{}
	lineNo := 0
	var look [9][]byte
	var f [9]string
	for sc.Scan() {
		lineNo++
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if !fields(raw, &look) {
			if len(p.Bad) < maxBad {
				p.Bad = append(p.Bad, fmt.Sprintf("package line %d: %q", lineNo, clip(string(raw))))
			} else {
				p.BadMore++
			}
			continue
		}
		// Nothing of the line is copied before this: most lines of a large
		// run name packages that are not kept.
		if keep != nil && !keep(look[0]) {
			continue
		}
		fields(string(raw), &f)
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
	p.Changes = make([]Change, 0, len(order))
	for _, k := range order {
		p.Changes = append(p.Changes, *byPkg[k])
	}
	sort.SliceStable(p.Changes, func(i, j int) bool { return p.Changes[i].Package < p.Changes[j].Package })
	return p, nil
}

// fields splits a package line into its nine fields, in place: eight
// words, then the action, which is the rest of the line (a .deb's path may
// hold spaces: apt writes it as it is). It tells whether the line follows
// the protocol: nine fields, the fifth a version comparison (<, > or =).
// Bytes to look at a line without copying it, a string to keep one.
func fields[T string | []byte](line T, f *[9]T) bool {
	blank := func(c byte) bool { return c == ' ' || c == '\t' }
	i := 0
	for n := 0; n < 8; n++ {
		for i < len(line) && blank(line[i]) {
			i++
		}
		start := i
		for i < len(line) && !blank(line[i]) {
			i++
		}
		if i == len(line) { // no ninth field
			return false
		}
		f[n] = line[start:i]
	}
	for i < len(line) && blank(line[i]) {
		i++
	}
	end := len(line)
	for end > i && (blank(line[end-1]) || line[end-1] == '\r') {
		end--
	}
	f[8] = line[i:end]
	op := f[4]
	return end > i && len(op) == 1 && (op[0] == '<' || op[0] == '>' || op[0] == '=')
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
