// Package dpkg asks dpkg which package owns a DKMS module's source.
package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Query runs dpkg-query, found on PATH by its bare name.
type Query struct{}

// queryTimeout bounds dpkg-query: it reads every package's file list, a
// few hundred milliseconds, and must not hang post-invoke.
const queryTimeout = 60 * time.Second

// Owners maps each given path to the package that ships it; paths no
// package ships are absent from the map ("foreign" modules). Like
// `dpkg-query -S`, which exits 1 when any path is unowned, a partial answer
// is not an error.
func (Query) Owners(ctx context.Context, paths []string) (map[string]string, error) {
	out := map[string]string{}
	if len(paths) == 0 {
		return out, nil
	}
	stdout := &program.Capped{Max: 4 << 20}
	stderr := &program.Capped{Max: 64 << 10}
	err := program.Cmd{Name: "dpkg-query", Args: append([]string{"-S", "--"}, paths...), Timeout: queryTimeout, Out: stdout, Err: stderr}.Run(ctx)
	var xe *program.ExitError
	if err != nil && !(errors.As(err, &xe) && xe.Code == 1) {
		return nil, fmt.Errorf("dpkg-query -S: %w: %s", err, firstLine(stderr.String()))
	}
	want := map[string]bool{}
	for _, p := range paths {
		want[p] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
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
