// Package aptconf reads apt's configuration as apt itself resolves it
// (`apt-config dump`), for the few settings of other programs that
// dkms-guard follows: unattended-upgrades' mail settings.
package aptconf

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Config is a part of apt's configuration: full key ("A::B::C") to
// value. apt's keys are case-insensitive, so Get is too.
type Config map[string]string

// Get is key's value, "" when unset.
func (c Config) Get(key string) string {
	if v, ok := c[key]; ok {
		return v
	}
	for k, v := range c {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// Bool is key's value read as apt's FindB reads it (StringToBool): yes,
// true, with, on, enable and 1 are true, their opposites false; anything
// else, or unset, is def.
func (c Config) Bool(key string, def bool) bool {
	switch strings.ToLower(strings.TrimSpace(c.Get(key))) {
	case "yes", "true", "with", "on", "enable", "1":
		return true
	case "no", "false", "without", "off", "disable", "0":
		return false
	}
	return def
}

// Parse reads `apt-config dump --format '%f=%v%n'` output: one "key=value"
// line per setting (the key never holds '=').
func Parse(out []byte) Config {
	c := Config{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && k != "" {
			c[k] = v
		}
	}
	return c
}

// Tool runs apt-config, found on PATH by its bare name.
type Tool struct{}

// dumpTimeout bounds apt-config: it reads apt.conf.d and answers at once.
const dumpTimeout = 30 * time.Second

// Dump reads the subtrees named by keys ("Unattended-Upgrade").
func (Tool) Dump(ctx context.Context, keys ...string) (Config, error) {
	out := &program.Capped{Max: 1 << 20}
	errOut := &program.Capped{Max: 16 << 10}
	args := append([]string{"dump", "--format", "%f=%v%n"}, keys...)
	if err := (program.Cmd{Name: "apt-config", Args: args, Timeout: dumpTimeout, Out: out, Err: errOut}).Run(ctx); err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(errOut.String()), "\n")
		if first != "" {
			return nil, fmt.Errorf("apt-config dump: %w: %s", err, first)
		}
		return nil, fmt.Errorf("apt-config dump: %w", err)
	}
	return Parse(out.Bytes()), nil
}
