// Package shellconf reads a bash fragment (dkms.conf, /etc/default/grub,
// /etc/default/dkms-guard) for its variables without running it.
//
// It parses with a real shell parser (mvdan.cc/sh) and takes a value only
// when the shell would certainly see the same one: a top-level assignment
// whose word is a plain literal after quote removal. Anything else (an
// expansion, $'...', an assignment inside an if or a loop, a command such
// as eval, source or a function call, which may set any variable) makes
// the value unknown, and the caller must not decide anything from an
// unknown value.
package shellconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Vars is what was understood of one or more fragments sourced in turn.
type Vars struct {
	vars map[string]map[int]string
	// unknown names the variables whose value cannot be told for certain
	// (an expansion, a conditional assignment).
	unknown map[string]bool
	// opaque is set by a statement that may set any variable: then no
	// value is known.
	opaque string
	// funcs names the fragment's functions: a call to one is a command
	// that may set anything, even when it shadows a harmless one (echo).
	funcs map[string]bool
}

// New is an empty set of variables: nothing sourced yet.
func New() *Vars {
	return &Vars{vars: map[string]map[int]string{}, unknown: map[string]bool{}, funcs: map[string]bool{}}
}

// Opaque is a fragment of which nothing is known, for why.
func Opaque(why string) *Vars {
	v := New()
	v.opaque = why
	return v
}

// MaxStructure bounds the brackets, operators and keywords of a fragment
// that Parse hands to the parser. mvdan.cc/sh parses nesting by recursion,
// and a deep enough nest ($( $( ..., [[ ! ! ..., $(( - - ...) within the
// 1 MiB the callers allow overflows the goroutine stack, a fatal error that
// recover cannot catch. Every level of nesting takes at least one such
// token, so their count bounds the depth; real fragments have a few hundred.
const MaxStructure = 4096

// ErrTooComplex is a fragment with more than MaxStructure brackets,
// operators and keywords: not parsed, so nothing of it is known.
var ErrTooComplex = errors.New("too many brackets, operators and keywords to parse safely")

// Parse reads one fragment. A fragment the parser refuses is an error;
// note that bash, sourcing it, would still have run every line before the
// error, so a caller deciding on its values should treat it as Opaque.
func Parse(r io.Reader, name string) (*Vars, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if structure(src) > MaxStructure {
		return nil, fmt.Errorf("%s: %w", name, ErrTooComplex)
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(src), name)
	if err != nil {
		return nil, err
	}
	c := New()
	syntax.Walk(f, func(n syntax.Node) bool {
		if fd, ok := n.(*syntax.FuncDecl); ok && fd.Name != nil {
			c.funcs[fd.Name.Value] = true
		}
		return true
	})
	for _, st := range f.Stmts {
		c.topLevel(st)
	}
	return c, nil
}

// keywords are the words after which the parser may go one level deeper
// without a bracket (time time time ..., if if ...).
var keywords = map[string]bool{
	"if": true, "then": true, "elif": true, "else": true, "while": true, "until": true, "do": true,
	"for": true, "select": true, "case": true, "function": true, "time": true, "coproc": true,
}

// structure counts the tokens that can open a level of nesting: every
// ASCII punctuation byte (quotes, $ and ; included, to be safe rather than
// clever: the parser reads some of them as nesting in some contexts) and
// every keyword. Closing brackets are not subtracted: a case pattern's )
// closes nothing, so only the total is sound.
func structure(src []byte) int {
	n := 0
	word := -1 // start of the current word, -1 outside one
	for i := 0; i <= len(src); i++ {
		c := byte(' ')
		if i < len(src) {
			c = src[i]
		}
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80 {
			if word < 0 {
				word = i
			}
			continue
		}
		if word >= 0 && keywords[string(src[word:i])] {
			n++
		}
		word = -1
		if c > ' ' && c < 0x7f {
			n++
		}
	}
	return n
}

// harmless are commands that cannot set a variable of the sourcing shell
// (printf can, with -v; it is not here).
var harmless = map[string]bool{"[": true, "test": true, "echo": true, "true": true, "false": true, ":": true}

// topLevel takes one statement that bash runs unconditionally.
func (c *Vars) topLevel(st *syntax.Stmt) {
	switch cmd := st.Cmd.(type) {
	case *syntax.CallExpr:
		if len(cmd.Args) == 0 && !st.Negated && !st.Background {
			for _, a := range cmd.Assigns {
				c.assign(a)
				c.scanValue(a)
			}
			c.scanRedirs(st)
			return
		}
	case *syntax.DeclClause:
		if v := cmd.Variant.Value; (v == "export" || v == "declare" || v == "typeset" || v == "readonly") && !st.Background {
			plain := true
			for _, a := range cmd.Args {
				if a.Name == nil {
					plain = false // a flag such as -a or -n: not followed
				}
			}
			if plain {
				for _, a := range cmd.Args {
					if !a.Naked {
						c.assign(a)
						c.scanValue(a)
					}
				}
				c.scanRedirs(st)
				return
			}
		}
	case *syntax.FuncDecl:
		// Defining a function changes no variable; calling it is a
		// command, which scan treats as opaque.
		return
	}
	c.scan(st)
}

// assign records a top-level assignment.
func (c *Vars) assign(a *syntax.Assign) {
	name := a.Name.Value
	if a.Append {
		c.unknown[name] = true
		return
	}
	if a.Array != nil {
		elems := map[int]string{}
		ok := true
		for i, el := range a.Array.Elems {
			v, lit := literal(el.Value)
			if el.Index != nil || !lit {
				ok = false
			}
			elems[i] = v
		}
		c.vars[name] = elems
		c.unknown[name] = !ok
		return
	}
	idx := 0
	if a.Index != nil {
		w, isWord := a.Index.(*syntax.Word)
		n, lit := literal(w)
		if !isWord || !lit || !isIndex(n) {
			c.unknown[name] = true
			return
		}
		fmt.Sscanf(n, "%d", &idx)
	}
	v, lit := "", true
	if a.Value != nil {
		v, lit = literal(a.Value)
	}
	// NAME=x sets element 0 and keeps the others, as bash does.
	if c.vars[name] == nil {
		c.vars[name] = map[int]string{}
	}
	c.vars[name][idx] = v
	if !lit {
		c.unknown[name] = true
	} else if a.Index == nil && len(c.vars[name]) == 1 {
		c.unknown[name] = false
	}
}

func isIndex(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// scanValue scans what an assignment evaluates: its index and value.
func (c *Vars) scanValue(a *syntax.Assign) {
	if a.Index != nil {
		c.scan(a.Index)
	}
	if a.Value != nil {
		c.scan(a.Value)
	}
	if a.Array != nil {
		c.scan(a.Array)
	}
}

func (c *Vars) scanRedirs(st *syntax.Stmt) {
	for _, r := range st.Redirs {
		c.scan(r)
	}
}

// scan walks a statement for anything that sets variables in a way
// dkms-guard does not follow: nested assignments make their variable
// unknown, commands that may assign make everything unknown.
func (c *Vars) scan(n syntax.Node) {
	syntax.Walk(n, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.FuncDecl, *syntax.CmdSubst, *syntax.ProcSubst, *syntax.Subshell:
			// A function body runs only when called (a command, below);
			// the others run in a subshell, whose variables die with it.
			return false
		case *syntax.Assign:
			if x.Name != nil {
				c.unknown[x.Name.Value] = true
			}
		case *syntax.CallExpr:
			if len(x.Args) > 0 {
				cmd, lit := literal(x.Args[0])
				if !lit || !harmless[cmd] || c.funcs[cmd] {
					c.setOpaque(fmt.Sprintf("runs %q, which may set any variable", clip(cmd)))
				}
			}
		case *syntax.WordIter:
			// for NAME in ...; select NAME in ...: the loop sets NAME.
			if x.Name != nil {
				c.unknown[x.Name.Value] = true
			}
		case *syntax.DeclClause, *syntax.LetClause, *syntax.ArithmCmd, *syntax.ArithmExp:
			c.setOpaque("declares or computes variables")
		case *syntax.ParamExp:
			if x.Exp != nil && (x.Exp.Op == syntax.AssignUnset || x.Exp.Op == syntax.AssignUnsetOrNull) && x.Param != nil {
				c.unknown[x.Param.Value] = true
			}
		}
		return true
	})
}

func (c *Vars) setOpaque(why string) {
	if c.opaque == "" {
		c.opaque = why
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// literal is w after quote removal, and whether that is all there is to
// it: no expansion of any kind and no $'...' (whose escapes bash reads
// differently from a plain string).
func literal(w *syntax.Word) (string, bool) {
	if w == nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range w.Parts {
		switch x := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescape(x.Value, false))
		case *syntax.SglQuoted:
			if x.Dollar {
				return "", false
			}
			b.WriteString(x.Value)
		case *syntax.DblQuoted:
			if x.Dollar {
				return "", false
			}
			for _, q := range x.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return "", false
				}
				b.WriteString(unescape(l.Value, true))
			}
		default:
			return "", false
		}
	}
	return b.String(), true
}

// UnescapeDouble is what bash makes of s inside double quotes, $ and `
// aside: \\ \" \$ \` and backslash-newline lose their backslash.
func UnescapeDouble(s string) string { return unescape(s, true) }

// unescape removes backslashes as bash's quote removal does: outside
// quotes every backslash escapes the next character (and a backslash-newline
// disappears); inside double quotes only before $ ` " \ and newline.
func unescape(s string, inDouble bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next == '\n':
			i++
		case !inDouble || strings.IndexByte("$`\"\\", next) >= 0:
			b.WriteByte(next)
			i++
		default:
			b.WriteByte('\\')
		}
	}
	return b.String()
}

// Known tells whether name's value was read as dkms would see it.
func (c *Vars) Known(name string) bool { return c.opaque == "" && !c.unknown[name] }

// Why says why name's value is not known ("" when it is), as a verb
// phrase to follow the fragment's name: "sets X conditionally ...".
func (c *Vars) Why(name string) string {
	switch {
	case c.opaque != "":
		return c.opaque
	case c.unknown[name]:
		return "sets " + name + " conditionally or from an expansion"
	}
	return ""
}

// Merge lays o over c, as a later sourced file overrides an earlier one.
func (c *Vars) Merge(o *Vars) {
	for name, elems := range o.vars {
		if c.vars[name] == nil {
			c.vars[name] = map[int]string{}
		}
		for i, v := range elems {
			c.vars[name][i] = v
		}
	}
	for name, u := range o.unknown {
		c.unknown[name] = c.unknown[name] || u
	}
	if c.opaque == "" {
		c.opaque = o.opaque
	}
	for f := range o.funcs {
		c.funcs[f] = true
	}
}

// Get is $NAME, that is ${NAME[0]}, as far as it is known (see Known).
func (c *Vars) Get(name string) string { return c.vars[name][0] }

// Elements are ${NAME[@]}, in index order.
func (c *Vars) Elements(name string) []string {
	elems := c.vars[name]
	idx := make([]int, 0, len(elems))
	for i := range elems {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, elems[i])
	}
	return out
}

// List is ${NAME[@]} split into words, as dkms's autoinstall splits BUILD_DEPENDS.
func (c *Vars) List(name string) []string {
	elems := c.vars[name]
	idx := make([]int, 0, len(elems))
	for i := range elems {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var out []string
	for _, i := range idx {
		out = append(out, strings.Fields(elems[i])...)
	}
	return out
}
