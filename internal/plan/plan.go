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

// ParseKeeping reads protocol version 3 from r, keeping the changes of the
// packages keep accepts (nil: every package). A package line that does not
// follow the protocol, or is longer than maxLine, is left out and named in
// Plan.Bad (the first few; BadMore counts the rest); only a wrong header is
// an error. It streams: the memory it needs grows with the packages kept,
// not with the input (a dist-upgrade announces thousands). It reads r to
// its end whatever happens, so that apt never sees its pipe closed early.
func ParseKeeping(r io.Reader, keep func(pkg []byte) bool) (*Plan, error) {
	defer io.Copy(io.Discard, r)
	in := &lines{r: bufio.NewReaderSize(r, 64<<10)}
	if err := in.header(); err != nil {
		return nil, err
	}
	p := &Plan{}
	b := builder{byPkg: map[string]*Change{}, keep: keep}
	for lineNo := 1; ; lineNo++ {
		raw, long, err := in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading package lines: %w", err)
		}
		switch {
		case long:
			p.bad(fmt.Sprintf("package line %d: longer than %d bytes", lineNo, maxLine))
		case len(bytes.TrimSpace(raw)) == 0:
		case !b.add(raw):
			p.bad(fmt.Sprintf("package line %d: %q", lineNo, clip(string(raw))))
		}
	}
	p.Changes = b.changes()
	return p, nil
}

// bad names a line left out, or counts it past maxBad.
func (p *Plan) bad(what string) {
	if len(p.Bad) < maxBad {
		p.Bad = append(p.Bad, what)
	} else {
		p.BadMore++
	}
}

// lines reads the input line by line, each at most maxLine long.
type lines struct {
	r   *bufio.Reader
	buf []byte // a line longer than r's buffer, put together
}

// next is the next line without its newline (and a CR before it, as
// bufio.ScanLines drops it), or whether it was longer than maxLine: such a
// line is read to its end and dropped. The line is valid until the next call.
func (l *lines) next() (line []byte, long bool, err error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		if err == nil && len(l.buf) == 0 && !long {
			return dropEOL(chunk), false, nil // the common case: no copy
		}
		if !long && len(l.buf)+len(chunk) > maxLine+1 {
			long, l.buf = true, l.buf[:0]
		}
		if !long {
			l.buf = append(l.buf, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(l.buf) == 0 && !long:
			return nil, false, io.EOF
		case err != nil && err != io.EOF:
			return nil, false, err
		}
		return dropEOL(l.buf), long, nil
	}
}

func dropEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// header reads "VERSION 3" and apt's configuration, up to the first empty line.
func (l *lines) header() error {
	first, long, err := l.next()
	switch {
	case err == io.EOF:
		return fmt.Errorf("%w: empty input, expected \"VERSION 3\"", ErrVersion)
	case err != nil:
		return fmt.Errorf("reading protocol header: %w", err)
	case long || strings.TrimSpace(string(first)) != "VERSION 3":
		return fmt.Errorf("%w: got %q, expected \"VERSION 3\"", ErrVersion, clip(string(first)))
	}
	for {
		line, long, err := l.next()
		if err == io.EOF || err == nil && len(line) == 0 && !long {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading apt's configuration: %w", err)
		}
	}
}

// builder folds package lines into one Change per package and architecture.
type builder struct {
	keep  func(pkg []byte) bool
	byPkg map[string]*Change
	order []string
	look  [9][]byte
	f     [9]string
}

// add takes one package line, and tells whether it follows the protocol.
func (b *builder) add(raw []byte) bool {
	if !fields(raw, &b.look) {
		return false
	}
	// Nothing of the line is copied before this: most lines of a large
	// run name packages that are not kept.
	if b.keep != nil && !b.keep(b.look[0]) {
		return true
	}
	fields(string(raw), &b.f)
	name, oldV, oldA, op, newV, newA, action := b.f[0], b.f[1], b.f[2], b.f[4], b.f[5], b.f[6], b.f[8]
	arch := newA
	if arch == "-" {
		arch = oldA
	}
	key := name + ":" + arch
	c, ok := b.byPkg[key]
	if !ok {
		c = &Change{Package: name, Arch: dash(arch), OldVersion: dash(oldV), NewVersion: dash(newV)}
		b.byPkg[key] = c
		b.order = append(b.order, key)
	}
	switch {
	case action == "**REMOVE**":
		c.Kind = Remove
	case action == "**CONFIGURE**":
		if c.Kind == "" {
			c.Kind = Configure
		}
	default: // a .deb to unpack
		c.Kind = unpackKind(oldV, op)
	}
	return true
}

// unpackKind is what unpacking a .deb does, by the installed version and
// the comparison apt wrote.
func unpackKind(oldV, op string) Kind {
	switch {
	case oldV == "-":
		return Install
	case op == "<":
		return Upgrade
	case op == ">":
		return Downgrade
	}
	return Reinstall
}

// changes are the packages in name order.
func (b *builder) changes() []Change {
	out := make([]Change, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, *b.byPkg[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Package < out[j].Package })
	return out
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
