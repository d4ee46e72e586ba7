package host

import (
	"path/filepath"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/file"
)

// uuNames are unattended-upgrades' program and its symlink.
var uuNames = map[string]bool{"unattended-upgrade": true, "unattended-upgrades": true}

// UnattendedUpgrade is the unattended-upgrades process this hook runs
// under, zero when none. It runs as `python3 /usr/bin/unattended-upgrade`
// and forks a child for each dpkg call (python-apt's InstallProgress):
// the outermost ancestor running it is taken, the one that lives for the
// whole run and sends its mail at the end.
func (h Host) UnattendedUpgrade(parent int) Proc {
	var found Proc
	pid := parent
	for i := 0; i < 64 && pid > 1; i++ {
		st, err := h.ReadStat(pid)
		if err != nil {
			break
		}
		if h.runsUnattendedUpgrade(pid) {
			found = Proc{PID: st.PID, Start: st.Start, Comm: st.Comm}
		}
		pid = st.PPID
	}
	return found
}

// runsUnattendedUpgrade tells whether pid's command line runs
// unattended-upgrade: as the program itself, or as an interpreter's
// script (the first argument that is not an option).
func (h Host) runsUnattendedUpgrade(pid int) bool {
	data, err := file.ReadRegular(h.Paths.ProcCmdline(pid), 1<<20)
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	if uuNames[filepath.Base(argv[0])] {
		return true
	}
	if !strings.HasPrefix(filepath.Base(argv[0]), "python") {
		return false
	}
	for _, a := range argv[1:] {
		if !strings.HasPrefix(a, "-") {
			return uuNames[filepath.Base(a)]
		}
	}
	return false
}

// Hostname is the machine's host name, "" when it cannot be read.
func (h Host) Hostname() string { return readTrimmed(h.Paths.Hostname()) }
