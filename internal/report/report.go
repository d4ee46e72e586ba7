// Package report owns every line dkms-guard shows a person.
//
// Message policy, the same as apt's so that a 2 a.m. reader and a log grep
// both work:
//
//   - "E: dkms-guard: ..." a real failure someone must act on: a module whose
//     own package was installed or upgraded in this run did not build.
//   - "W: dkms-guard: ..." something is missing but the system still works: a
//     leftover or vendor module did not build for a new kernel, a state file
//     was corrupt and moved aside.
//   - "N: dkms-guard: ..." information: what was built, what to boot, how to
//     retry.
//
// One fact per line, lowercase, no trailing period, and the object named in
// full on that line (module/version, kernel, exit status, log path) so that
// a single grep finds everything about it. Hooks write only to stderr (the
// Debian Kernel Handbook, section 8.1: kernel hooks may run under debconf,
// whose protocol owns stdout); stdout is for data commands such as status.
package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Reporter writes prefixed lines. It is safe for concurrent use: a line is
// written whole, never interleaved with another.
type Reporter struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Reporter writing to w.
func New(w io.Writer) *Reporter { return &Reporter{w: w} }

func (r *Reporter) line(prefix, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	// A message never spans lines: a multi-line error (from a wrapped
	// program's output) would break greppability, so each line keeps the prefix.
	for _, l := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintf(r.w, "%s: dkms-guard: %s\n", prefix, l)
	}
}

// Errorf reports a real failure.
func (r *Reporter) Errorf(format string, args ...any) { r.line("E", format, args...) }

// Warnf reports something missing that does not stop the system from working.
func (r *Reporter) Warnf(format string, args ...any) { r.line("W", format, args...) }

// Notef reports information.
func (r *Reporter) Notef(format string, args ...any) { r.line("N", format, args...) }

// Name shows a module name, version or kernel release as it is when it is
// plain, and quoted (Go syntax) when it has spaces or control characters,
// so that an odd name can neither forge a second message line nor hide.
func Name(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if c > unicode.MaxASCII || !unicode.IsGraphic(c) || unicode.IsSpace(c) || c == '"' || c == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

// Text shows a sentence read back from a record (a reason, a log's path)
// as it is when it is printable on one line, and quoted (Go syntax) when
// it holds a control character, a newline or invalid UTF-8: a record must
// not forge a line or drive the terminal of whoever reads status.
func Text(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return strconv.Quote(s)
		}
	}
	return s
}

// MV shows module/version.
func MV(module, version string) string { return Name(module + "/" + version) }

// Replay writes lines another Reporter kept in a buffer (New(&buf)), as
// one write: the builds that run side by side say their lines whole, one
// build at a time and in a stable order.
func (r *Reporter) Replay(lines []byte) {
	if len(lines) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w.Write(lines)
}
