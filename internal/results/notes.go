package results

import (
	"bytes"
	"fmt"
	"strings"
)

// notesHeadline is the opening paragraph when only notes need saying
// (Secure Boot's: every kernel has its modules, but they will not load),
// nil without any: the login and update-notifier show it, so it names the
// trouble and the command that fixes it, in at most maxHeadline lines.
func notesHeadline(notes []string, self string) []string {
	if len(notes) == 0 {
		return nil
	}
	lines := []string{"dkms-guard: the DKMS modules built for this machine will not load:"}
	lines = append(lines, notes[:min(len(notes), maxHeadline-2)]...)
	return append(lines, fmt.Sprintf("Details: %s; as root: dkms-guard status", self))
}

// notesOnly is the notice when only notes need saying, nil without any.
func notesOnly(notes []string, self string) []byte {
	head := notesHeadline(notes, self)
	if head == nil {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(strings.Join(head, "\n") + "\n\n")
	for _, l := range notes[len(head)-2:] {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "This file (%s) goes away once that is fixed.\n", self)
	return b.Bytes()
}
