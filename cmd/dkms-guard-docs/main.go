// Command dkms-guard-docs writes dkms-guard's manual page and bash
// completion, generated from the CLI's own definitions, into a directory:
//
//	dkms-guard-docs VERSION DIR   writes DIR/dkms-guard.8 and DIR/dkms-guard.bash-completion
//
// The Makefile runs it at build time; nothing of it is installed.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dkms-guard/dkms-guard/internal/app"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: dkms-guard-docs VERSION DIR")
		os.Exit(2)
	}
	version, dir := os.Args[1], os.Args[2]
	files := map[string]string{
		"dkms-guard.8":               app.Man(version),
		"dkms-guard.bash-completion": app.Completion(),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "dkms-guard-docs:", err)
			os.Exit(1)
		}
	}
}
