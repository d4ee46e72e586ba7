// Package dpkg asks dpkg which package owns a DKMS module's source.
package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Query runs dpkg-query, found on PATH by its bare name.
type Query struct {
	Program string // "dpkg-query" unless a test says otherwise
}

// Owners maps each given path to the package that ships it; paths no
// package ships are absent from the map ("foreign" modules). Like
// `dpkg-query -S`, which exits 1 when any path is unowned, a partial answer
// is not an error.
func (q Query) Owners(ctx context.Context, paths []string) (map[string]string, error) {
	out := map[string]string{}
	if len(paths) == 0 {
		return out, nil
	}
	prog := q.Program
	if prog == "" {
		prog = "dpkg-query"
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stdout := &capped{max: 4 << 20}
	stderr := &capped{max: 64 << 10}
	cmd := exec.CommandContext(ctx, prog, append([]string{"-S", "--"}, paths...)...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var xe *exec.ExitError
	if err != nil && !(errors.As(err, &xe) && xe.ExitCode() == 1) {
		return nil, fmt.Errorf("dpkg-query -S: %w: %s", err, firstLine(stderr.String()))
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	sc := bufio.NewScanner(&stdout.buf)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "diversion by ") || strings.HasPrefix(line, "local diversion ") {
			continue
		}
		// "pkg1, pkg2:arch: /path" -- the path starts after the last ": /".
		i := strings.LastIndex(line, ": /")
		if i < 0 {
			continue
		}
		pkgs, path := line[:i], line[i+2:]
		if !want[path] {
			continue
		}
		pkg := strings.TrimSpace(strings.Split(pkgs, ",")[0])
		pkg, _, _ = strings.Cut(pkg, ":") // drop ":amd64"
		if pkg != "" {
			out[path] = pkg
		}
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// capped keeps at most max bytes of a program's output and drops the rest,
// so a misbehaving program cannot make dkms-guard grow without bound.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) <= room {
			c.buf.Write(p)
		} else {
			c.buf.Write(p[:room])
		}
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
