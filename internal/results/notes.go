package results

import (
	"bytes"
	"fmt"
)

// notesOnly is the notice when only notes need saying (Secure Boot's:
// every kernel has its modules, but they will not load), nil without any.
func notesOnly(notes []string, self string) []byte {
	if len(notes) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("dkms-guard: the DKMS modules built for this machine will not load.\n\n")
	for _, l := range notes {
		b.WriteString(l + "\n")
	}
	b.WriteString("Details: dkms-guard status\n")
	fmt.Fprintf(&b, "This file (%s) goes away once that is fixed.\n", self)
	return b.Bytes()
}
