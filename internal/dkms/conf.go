// Package dkms reads dkms's tree and dkms.conf files and runs dkms.
//
// dkms.conf is a bash fragment that dkms sources (read_conf in
// /usr/sbin/dkms). dkms-guard does not run it: it reads the plain
// assignments it needs and treats anything cleverer (conditionals,
// command substitution, variable references) as unknown, in which case the
// decision is left to dkms itself (exit 77 still marks a module unsupported).
// The parsed values only ever skip work that dkms would refuse anyway
// (BUILD_EXCLUSIVE_*, OBSOLETE_BY) or order the work (BUILD_DEPENDS).
package dkms

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Conf is what dkms-guard understood of a dkms.conf and its overrides.
type Conf struct {
	vars map[string]map[int]string
	// dynamic names the variables whose value holds an expansion
	// ($kernelver, $(...)) that dkms-guard does not evaluate.
	dynamic map[string]bool
	// Complex is set when the file has lines that are not plain assignments
	// (if/case/functions/command substitution): its values may depend on
	// the kernel, so no decision is drawn from them.
	Complex bool
}

// assignRE is compiled on first use: the apt hooks that never read a
// dkms.conf must not pay for it at start-up.
var assignRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?s)^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9]+)\])?=(.*)$`)
})

// ParseConf reads one dkms.conf-style file.
func ParseConf(r io.Reader) (*Conf, error) {
	c := newConf()
	if err := c.parse(r); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conf) parse(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	pending := ""
	for sc.Scan() {
		line := sc.Text()
		if pending != "" {
			line = pending + "\n" + line
			pending = ""
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		m := assignRE().FindStringSubmatch(trimmed)
		if m == nil {
			c.Complex = true
			continue
		}
		name, idx := m[1], 0
		if m[2] != "" {
			idx, _ = strconv.Atoi(m[2])
		}
		raw := m[3]
		if strings.HasPrefix(raw, "(") && m[2] == "" {
			vals, ok, complete := words(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(stripComment(raw)), "("), ")"))
			if !complete {
				pending = line
				continue
			}
			c.dynamic[name] = !ok
			c.vars[name] = map[int]string{}
			for i, v := range vals {
				c.vars[name][i] = v
			}
			continue
		}
		val, ok, complete := value(raw)
		if !complete {
			pending = line
			continue
		}
		if !ok {
			c.dynamic[name] = true
		}
		// NAME=x sets element 0 and keeps the others, as bash does.
		if c.vars[name] == nil {
			c.vars[name] = map[int]string{}
		}
		c.vars[name][idx] = val
	}
	if pending != "" {
		c.Complex = true
	}
	return sc.Err()
}

// value unquotes one shell word. ok is false when it holds an expansion
// dkms-guard does not evaluate; complete is false when a quote is still open.
func value(raw string) (val string, ok, complete bool) {
	vals, ok, complete := words(raw)
	if !complete {
		return "", ok, false
	}
	if len(vals) == 0 {
		return "", ok, true
	}
	if len(vals) > 1 {
		// "A=b c" runs c with A=b set: not an assignment dkms-guard can read.
		ok = false
	}
	return vals[0], ok, true
}

// words splits shell words with single and double quotes and backslashes.
func words(s string) (out []string, ok, complete bool) {
	ok = true
	var cur strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case quote == '"':
			switch ch {
			case '"':
				quote = 0
			case '\\':
				if i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					cur.WriteByte(s[i])
				} else {
					cur.WriteByte(ch)
				}
			case '$', '`':
				if ch == '`' || expands(s, i) {
					ok = false
				}
				cur.WriteByte(ch)
			default:
				cur.WriteByte(ch)
			}
		default:
			switch ch {
			case '\'', '"':
				quote = ch
				inWord = true
			case '\\':
				if i+1 < len(s) {
					i++
					cur.WriteByte(s[i])
				}
				inWord = true
			case ' ', '\t', '\n':
				if inWord {
					out = append(out, cur.String())
					cur.Reset()
					inWord = false
				}
			case '#':
				if !inWord {
					i = len(s) // comment to end of line
					continue
				}
				cur.WriteByte(ch)
			case '$', '`', ';', '&', '|', '<', '>', '(', ')':
				if ch != '$' || expands(s, i) {
					ok = false
				}
				cur.WriteByte(ch)
				inWord = true
			default:
				cur.WriteByte(ch)
				inWord = true
			}
		}
	}
	if quote != 0 {
		return nil, ok, false
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, ok, true
}

// expands tells whether the $ at s[i] starts an expansion; a $ before
// anything else (end of word, a quote) is a literal $, common at the end of
// a BUILD_EXCLUSIVE_KERNEL pattern.
func expands(s string, i int) bool {
	if i+1 >= len(s) {
		return false
	}
	c := s[i+1]
	return c == '_' || c == '{' || c == '(' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || strings.IndexByte("@*#?$!-", c) >= 0
}

func stripComment(s string) string {
	// Only for array bodies "(a b) # note": cut at a # that starts a word.
	in := byte(0)
	for i := 0; i < len(s); i++ {
		switch {
		case in != 0:
			if s[i] == in {
				in = 0
			}
		case s[i] == '\'' || s[i] == '"':
			in = s[i]
		case s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

func newConf() *Conf {
	return &Conf{vars: map[string]map[int]string{}, dynamic: map[string]bool{}}
}

// Known tells whether name's value was read as dkms would see it.
func (c *Conf) Known(name string) bool { return !c.Complex && !c.dynamic[name] }

// merge lays o over c, as a later sourced file overrides an earlier one.
func (c *Conf) merge(o *Conf) {
	for name, elems := range o.vars {
		if c.vars[name] == nil {
			c.vars[name] = map[int]string{}
		}
		for i, v := range elems {
			c.vars[name][i] = v
		}
		c.dynamic[name] = c.dynamic[name] || o.dynamic[name]
	}
	c.Complex = c.Complex || o.Complex
}

// Get is $NAME, that is ${NAME[0]}.
func (c *Conf) Get(name string) string { return c.vars[name][0] }

// List is ${NAME[@]} split into words, as dkms's autoinstall splits BUILD_DEPENDS.
func (c *Conf) List(name string) []string {
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

// Autoinstall mirrors `[[ ! $AUTOINSTALL ]]` in dkms's autoinstall: any
// non-empty value, even "no", means yes.
func (c *Conf) Autoinstall() bool { return c.Get("AUTOINSTALL") != "" }

// BuildDepends lists the modules that must be installed first.
func (c *Conf) BuildDepends() []string { return c.List("BUILD_DEPENDS") }

// ReadConf reads a module's dkms.conf and the overrides dkms's read_conf
// sources after it, in the same order: /etc/dkms/M.conf, M-V.conf,
// M-V-K.conf, M-V-K-A.conf.
func ReadConf(confFile, overrideDir, module, version, kernel, arch string) (*Conf, error) {
	c := newConf()
	files := []string{confFile}
	for _, n := range []string{
		module + ".conf",
		module + "-" + version + ".conf",
		module + "-" + version + "-" + kernel + ".conf",
		module + "-" + version + "-" + kernel + "-" + arch + ".conf",
	} {
		if strings.ContainsRune(n, '/') {
			continue // an odd name must not walk out of /etc/dkms
		}
		files = append(files, filepath.Join(overrideDir, n))
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("reading dkms.conf: %w", err)
			}
			continue
		}
		o, err := ParseConf(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", f, err)
		}
		c.merge(o)
	}
	return c, nil
}

// BuildDependsOrNil is BuildDepends on a conf that may not have been read.
func (c *Conf) BuildDependsOrNil() []string {
	if c == nil {
		return nil
	}
	return c.BuildDepends()
}
