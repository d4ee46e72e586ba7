package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/dkms-guard/dkms-guard/internal/state"
)

// Proc identifies a process across pid reuse: pid and start time. It is
// the record's own type, so that what is found here is stored as it is.
type Proc = state.Proc

// Stat is what dkms-guard needs of /proc/PID/stat.
type Stat struct {
	PID     int
	PPID    int
	PGRP    int  // field 5, the process group
	Session int  // field 6
	State   byte // field 3: R, S, D, ..., Z a zombie
	Comm    string
	Start   uint64 // field 22, clock ticks after boot
}

// ReadStat parses /proc/PID/stat. comm may hold spaces and parentheses,
// so the fields are counted from the last ')'.
func (h Host) ReadStat(pid int) (Stat, error) {
	name := h.Paths.ProcStat(pid)
	data, err := os.ReadFile(name)
	if err != nil {
		return Stat{}, err
	}
	open := bytes.IndexByte(data, '(')
	closing := bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("parsing %s: no command name", name)
	}
	rest := strings.Fields(string(data[closing+1:]))
	// rest[0] is field 3 (state): ppid is field 4, starttime field 22.
	if len(rest) < 20 {
		return Stat{}, fmt.Errorf("parsing %s: %d fields", name, len(rest)+2)
	}
	ppid, err1 := strconv.Atoi(rest[1])
	start, err2 := strconv.ParseUint(rest[19], 10, 64)
	pgrp, err3 := strconv.Atoi(rest[2])
	sid, err4 := strconv.Atoi(rest[3])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Stat{}, fmt.Errorf("parsing %s: bad number", name)
	}
	return Stat{PID: pid, PPID: ppid, PGRP: pgrp, Session: sid, State: rest[0][0], Comm: string(data[open+1 : closing]), Start: start}, nil
}

// Dead is a process that has exited and waits to be reaped (a zombie, or
// one being reaped): it runs nothing, though /proc still lists it.
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

var shells = map[string]bool{"sh": true, "dash": true, "bash": true, "busybox": true}

// Apt names the process that ran this hook: apt runs hooks as
// `/bin/sh -c CMD` from a forked child of itself, so the chain is
// hook <- sh <- apt (child) <- apt. Shells are skipped, then the topmost of
// consecutive ancestors with the same command name is taken: the apt
// process that lives for the whole run, not its short-lived child.
func (h Host) Apt(parent int) Proc {
	pid := parent
	var found Stat
	for i := 0; i < 16 && pid > 1; i++ {
		st, err := h.ReadStat(pid)
		if err != nil {
			break
		}
		if found.PID == 0 {
			if shells[st.Comm] {
				pid = st.PPID
				continue
			}
			found = st
		} else if st.Comm == found.Comm {
			found = st
		} else {
			break
		}
		pid = st.PPID
	}
	if found.PID == 0 {
		return Proc{PID: parent}
	}
	return Proc{PID: found.PID, Start: found.Start, Comm: found.Comm}
}

// Alive tells whether p still runs: same pid and same start time. A
// process recorded without a start time cannot be told from a newcomer
// with its pid, so it counts as gone.
func (h Host) Alive(p Proc) bool {
	if p.PID <= 0 || p.Start == 0 {
		return false
	}
	st, err := h.ReadStat(p.PID)
	return err == nil && st.Start == p.Start
}
