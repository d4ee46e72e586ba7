// Command dkms-guard keeps Debian and Ubuntu kernel upgrades working when
// DKMS modules fail to build. See dkms-guard(8) and README.md.
package main

import (
	"os"

	"github.com/dkms-guard/dkms-guard/internal/app"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(app.Main(os.Args, version))
}
