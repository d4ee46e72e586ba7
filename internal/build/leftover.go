package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dkms-guard/dkms-guard/internal/host"
)

// leftover is one line of the build lock's note: a dkms run, its process
// group and what identifies that group across pid reuse, as host.Proc
// identifies apt: the leader's start time (/proc/PID/stat field 22) and
// the boot, and the session the group belongs to (dkms-guard's: a build's
// group is made with setpgid, never setsid).
type leftover struct {
	pgid  int
	start uint64 // 0: unknown
	boot  string // "": unknown
	// session is -1 when unknown. 0 is a real session id: getsid gives
	// 0 when the session's leader is outside this pid namespace (a
	// container, a CI runner).
	session int
	what    string // "dkms build hello/1.0 for 6.1.0-56-amd64"
}

// String is the note's line:
// "pgid 123 start 4567 boot "ID" session 99 dkms build ...".
func (l leftover) String() string {
	return fmt.Sprintf("pgid %d start %d boot %q session %d %s", l.pgid, l.start, l.boot, l.session, l.what)
}

// parseLeftover reads a note's line. A line of an older dkms-guard
// ("pgid 123 dkms build ...") parses with start and boot unknown.
func parseLeftover(line string) (leftover, bool) {
	rest, ok := strings.CutPrefix(line, "pgid ")
	if !ok {
		return leftover{}, false
	}
	num, rest, _ := strings.Cut(rest, " ")
	pgid, err := strconv.Atoi(num)
	if err != nil || pgid <= 1 {
		return leftover{}, false
	}
	l := leftover{pgid: pgid, session: -1, what: rest}
	if rest, ok := strings.CutPrefix(rest, "start "); ok {
		num, rest, _ = strings.Cut(rest, " ")
		start, err := strconv.ParseUint(num, 10, 64)
		rest, ok = strings.CutPrefix(rest, "boot ")
		if err != nil || !ok {
			return leftover{}, false
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return leftover{}, false
		}
		l.start, l.boot, l.what = start, mustUnquote(q), strings.TrimPrefix(rest[len(q):], " ")
		if rest, ok := strings.CutPrefix(l.what, "session "); ok {
			num, rest, _ = strings.Cut(rest, " ")
			if sid, err := strconv.Atoi(num); err == nil && sid >= -1 {
				l.session, l.what = sid, rest
			}
		}
	}
	return l, true
}

func mustUnquote(q string) string {
	s, _ := strconv.Unquote(q) // QuotedPrefix checked it
	return s
}

// stopLeftovers handles what the last holder of the build lock noted and
// did not clear: a dkms-guard that was killed (SIGKILL, a crash) in the
// middle of its builds, one line each. dkms itself died with it
// (Pdeathsig), but make and the compiler may still run in its process
// group, in dkms's build directory: they are stopped, and said so, before
// this session builds anything. Only that group, identified: the id alone
// may be anyone's after a reboot or a long gap.
func (b *Builder) stopLeftovers(note, bootID string) {
	for _, line := range strings.Split(note, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			b.stopBuild(line, bootID)
		}
	}
}

// groupIs is what a lock note's process group is now.
type groupIs int

const (
	groupGone    groupIs = iota // no such group, or another one: the build is over
	groupLeft                   // the build's own group, still running
	groupUnknown                // a group of that id runs, and the note cannot tell whose
)

func (b *Builder) stopBuild(line, bootID string) {
	l, ok := parseLeftover(line)
	if !ok {
		b.Report.Warnf("the build lock held a note dkms-guard cannot read: %q", line)
		return
	}
	gone := func() {
		b.Report.Notef("the last build (%s) was cut short when its dkms-guard was killed; what it did not install is built again when needed", l.what)
	}
	switch identify(b.host(), l, bootID) {
	case groupGone:
		gone()
		return
	case groupUnknown:
		b.Report.Warnf("the build lock names process group %d (%s), which dkms-guard cannot tell from an unrelated one: nothing was stopped", l.pgid, l.what)
		return
	}
	err := syscall.Kill(-l.pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		gone() // it ended since /proc was read
		return
	}
	for i := 0; err == nil && i < 100 && alive(groupMembers(b.host(), l.pgid)) > 0; i++ {
		time.Sleep(50 * time.Millisecond) // SIGKILL is sure, dying takes a moment
	}
	if n := alive(groupMembers(b.host(), l.pgid)); err == nil && n > 0 {
		// Uninterruptible sleep: a hung NFS server or disk.
		err = fmt.Errorf("%d of its processes still there 5 s after SIGKILL", n)
	}
	if err != nil {
		b.Report.Warnf("a build left running by a dkms-guard that was killed (process group %d: %s) could not be stopped: %v", l.pgid, l.what, err)
		return
	}
	b.Report.Warnf("a build left running by a dkms-guard that was killed (process group %d: %s) was stopped; what it did not install is built again when needed", l.pgid, l.what)
}

// identify tells whether l's process group still runs as the build the
// note names. The kernel keeps a pid from reuse while a process group of
// that id lives, so: its leader alive with the noted start time is the
// build; any other process with that pid means the group is another's.
// With the leader gone (dkms dies with its dkms-guard), the members left
// are the build's if each started after the leader and each is in the
// noted session (dkms-guard's builds stay in its session): a group of
// that id made since, by setsid or by setpgid elsewhere, is another's.
// A note without the session cannot tell.
func identify(h host.Host, l leftover, bootID string) groupIs {
	if l.boot != "" && bootID != "" && l.boot != bootID {
		return groupGone // everything of an earlier boot is gone
	}
	members := groupMembers(h, l.pgid)
	if len(members) == 0 {
		return groupGone
	}
	if l.start == 0 || l.boot == "" || bootID == "" {
		return groupUnknown
	}
	for _, st := range members {
		if st.PID == l.pgid {
			if st.Start == l.start {
				return groupLeft
			}
			return groupGone
		}
	}
	if l.session < 0 {
		return groupUnknown
	}
	for _, st := range members {
		if st.Start < l.start || st.Session != l.session {
			return groupGone
		}
	}
	return groupLeft
}

// alive counts the processes not yet dead: a zombie has stopped, even
// where nobody reaps it (a container whose pid 1 is no init).
func alive(members []host.Stat) int {
	n := 0
	for _, st := range members {
		if !st.Dead() {
			n++
		}
	}
	return n
}

// groupMembers lists the processes of process group pgid, from /proc.
func groupMembers(h host.Host, pgid int) []host.Stat {
	proc := filepath.Dir(filepath.Dir(h.Paths.ProcStat(1)))
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var out []host.Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := h.ReadStat(pid); err == nil && st.PGRP == pgid {
			out = append(out, st)
		}
	}
	return out
}

// noteOf is the note's line for a dkms run leading process group pgid:
// start time 0 and session -1 when they cannot be read (the note then
// cannot identify the group, and nothing is ever stopped for it).
func noteOf(h host.Host, pgid int, bootID, what string) leftover {
	l := leftover{pgid: pgid, boot: bootID, session: -1, what: what}
	if st, err := h.ReadStat(pgid); err == nil {
		l.start, l.session = st.Start, st.Session
	}
	return l
}
