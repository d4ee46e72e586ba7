// Package secureboot tells whether the DKMS modules dkms signs can load.
// With Secure Boot on, the kernel loads only modules signed by a key it
// trusts; dkms signs them with its own key (/var/lib/dkms/mok.pub unless
// framework.conf says otherwise), which the kernel trusts only once the
// administrator has enrolled it in shim's MOK list. A module that built
// then still does not load, and dkms says so only in a build's output.
//
// Policy: nothing is said without EFI or without mokutil, nor when an
// answer cannot be read for certain: a wrong warning is worse than none.
package secureboot

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/file"
	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
	"github.com/dkms-guard/dkms-guard/internal/shellconf"
)

// State is whether Secure Boot is on.
type State string

const (
	On      State = "on"
	Off     State = "off"
	Unknown State = "unknown" // no EFI, no mokutil, or an answer not understood
)

// Enrolment is whether dkms's signing key is enrolled.
type Enrolment string

const (
	Enrolled         Enrolment = "enrolled" // in the MOK list, db, or the kernel's keyring
	NotEnrolled      Enrolment = "not-enrolled"
	Pending          Enrolment = "pending" // imported, waiting for MokManager at the next boot
	EnrolmentUnknown Enrolment = "unknown"
)

// Status is what was found; status --json shows it as it is.
type Status struct {
	SecureBoot State `json:"state"`
	// Why says why SecureBoot or Enrolment is unknown.
	Why string `json:"why,omitempty"`
	// Key is dkms's signing certificate as the administrator names it,
	// and Enrolment its state: set only while Secure Boot is on.
	Key       string    `json:"key,omitempty"`
	Enrolment Enrolment `json:"key_enrolment,omitempty"`
}

// Mokutil runs mokutil with args: its standard output and error, and
// program.ErrNotFound when it is not installed.
type Mokutil interface {
	Run(ctx context.Context, args ...string) (stdout, stderr string, err error)
}

// Checker finds the Status of the machine below Paths.
type Checker struct {
	Paths   paths.Paths
	Mokutil Mokutil
}

// Check asks mokutil whether Secure Boot is on and, if so, whether dkms's
// signing certificate is enrolled.
func (c Checker) Check(ctx context.Context) Status {
	if !paths.Exists(c.Paths.EFIDir()) {
		return Status{SecureBoot: Unknown, Why: "not booted through UEFI"}
	}
	out, _, err := c.Mokutil.Run(ctx, "--sb-state")
	if errors.Is(err, program.ErrNotFound) {
		return Status{SecureBoot: Unknown, Why: "mokutil is not installed"}
	}
	if err != nil {
		return Status{SecureBoot: Unknown, Why: "mokutil --sb-state: " + err.Error()}
	}
	st := sbState(out)
	if st.SecureBoot != On {
		return st
	}
	cert, why := Certificate(c.Paths)
	st.Key = c.Paths.Rel(cert)
	if why != "" {
		st.Key, st.Enrolment, st.Why = "", EnrolmentUnknown, why
		return st
	}
	if !paths.Exists(cert) {
		st.Enrolment, st.Why = EnrolmentUnknown, "dkms has not made its signing key yet"
		return st
	}
	out, errOut, _ := c.Mokutil.Run(ctx, "--test-key", cert)
	st.Enrolment = testKey(out, errOut)
	if st.Enrolment == EnrolmentUnknown {
		st.Why = "mokutil --test-key gave no answer dkms-guard understands"
	}
	return st
}

// sbState reads `mokutil --sb-state` (mokutil.c, sb_state_internal):
// "SecureBoot enabled", possibly followed by "SecureBoot validation is
// disabled in shim" (then the kernel does not enforce signatures either),
// or "SecureBoot disabled". Its exit status changed between releases and
// is not read.
func sbState(out string) Status {
	lines := strings.Split(out, "\n")
	has := func(s string) bool {
		for _, l := range lines {
			if strings.TrimSpace(l) == s {
				return true
			}
		}
		return false
	}
	switch {
	case has("SecureBoot enabled") && has("SecureBoot validation is disabled in shim"):
		return Status{SecureBoot: Off}
	case has("SecureBoot enabled"):
		return Status{SecureBoot: On}
	case has("SecureBoot disabled"):
		return Status{SecureBoot: Off}
	}
	return Status{SecureBoot: Unknown, Why: "mokutil --sb-state gave no answer dkms-guard understands"}
}

// testKey reads `mokutil --test-key CERT` (mokutil.c, test_key and
// print_skip_message). Its exit status means opposite things in 0.6/0.7
// (0: not enrolled) and later releases (1: not enrolled): only the words count.
func testKey(out, errOut string) Enrolment {
	switch {
	case strings.Contains(out, " is not enrolled"):
		return NotEnrolled
	case strings.Contains(out, " is already in the enrollment request"):
		return Pending
	case strings.Contains(out, " is already enrolled"), strings.Contains(out, " is already in db"),
		strings.Contains(errOut, " is already in the built-in trusted keyring"):
		return Enrolled
	}
	return EnrolmentUnknown
}

// maxConf bounds one framework.conf or os-release file.
const maxConf = 1 << 20

// Certificate is the certificate dkms signs with, as dkms's
// prepare_signing finds it (3.0.10 and 3.2.2 alike): mok_certificate from
// its framework files, else /var/lib/dkms/mok.pub; on Ubuntu with no
// mok_signing_key, update-secureboot-policy's MOK.der. why is set when
// that cannot be told for certain.
func Certificate(p paths.Paths) (cert, why string) {
	conf := read(p.FrameworkConfs())
	for _, name := range []string{"mok_certificate", "mok_signing_key"} {
		if !conf.Known(name) {
			return "", "dkms's framework.conf " + conf.Why(name)
		}
	}
	if conf.Get("mok_signing_key") == "" && ubuntu(p) {
		return p.UbuntuMOKCert(), ""
	}
	if c := conf.Get("mok_certificate"); c != "" {
		return filepath.Join(p.Root, c), ""
	}
	return p.MOKCert(), ""
}

// read sources files in turn as dkms does: a missing or unreadable one is
// skipped, one that cannot be parsed makes everything unknown.
func read(files []string) *shellconf.Vars {
	all := shellconf.New()
	for _, name := range files {
		data, err := file.ReadRegular(name, maxConf)
		if err != nil {
			continue
		}
		v, err := shellconf.Parse(bytes.NewReader(data), name)
		if err != nil {
			v = shellconf.Opaque("cannot be parsed")
		}
		all.Merge(v)
	}
	return all
}

// ubuntu is dkms's distro_version() being ubuntu*: os-release's ID when
// it is ubuntu, else its ID_LIKE, else its ID.
func ubuntu(p paths.Paths) bool {
	for _, name := range p.OSReleaseFiles() {
		if !paths.Exists(name) {
			continue
		}
		v := read([]string{name})
		id, like := v.Get("ID"), v.Get("ID_LIKE")
		switch {
		case id == "ubuntu":
			return true
		case like != "":
			return strings.HasPrefix(like, "ubuntu")
		}
		return strings.HasPrefix(id, "ubuntu")
	}
	return false
}

// Lines are what the summary, the notice and status say, once for the
// key: nothing unless Secure Boot is on, the key is not (yet) enrolled
// and some kernel has a DKMS module built (built).
func (s Status) Lines(built bool) []string {
	if s.SecureBoot != On || !built {
		return nil
	}
	switch s.Enrolment {
	case NotEnrolled:
		return []string{
			"dkms's signing key " + s.Key + " is not enrolled while Secure Boot is on: the kernel will not load the DKMS modules signed with it.",
			"To enrol it: mokutil --import " + s.Key + ", then reboot and confirm the key in MokManager.",
		}
	case Pending:
		return []string{
			"dkms's signing key " + s.Key + " waits to be enrolled while Secure Boot is on: the kernel will not load the DKMS modules signed with it until you reboot and confirm the key in MokManager.",
		}
	}
	return nil
}

// Tool runs mokutil, found on PATH by its bare name.
type Tool struct{}

// mokutilTimeout bounds mokutil: it reads a few EFI variables.
const mokutilTimeout = 30 * time.Second

// Run runs mokutil with args; a non-zero exit is not an error here (its
// meaning changed between releases), only not running at all.
func (Tool) Run(ctx context.Context, args ...string) (string, string, error) {
	out := &program.Capped{Max: 64 << 10}
	errOut := &program.Capped{Max: 64 << 10}
	err := program.Cmd{Name: "mokutil", Args: args, Timeout: mokutilTimeout, Out: out, Err: errOut}.Run(ctx)
	var xe *program.ExitError
	if errors.As(err, &xe) && !xe.TimedOut && xe.Signal == "" {
		err = nil
	}
	return out.String(), errOut.String(), err
}
