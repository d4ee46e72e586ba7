package mail

import (
	"strings"
	"testing"
)

func TestBytesKeepsHeadersOnTheirLines(t *testing.T) {
	m := Message{From: "root", To: "admin@example.org\nBcc: evil@example.org", Subject: "dkms-guard on höst", Body: "line one\r\nline two"}
	got := string(m.Bytes())
	want := "From: root\nTo: admin@example.org Bcc: evil@example.org\nSubject: =?utf-8?q?dkms-guard_on_h=C3=B6st?=\n" +
		"Auto-Submitted: auto-generated\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
		"line one\nline two\n"
	if got != want {
		t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "\nBcc:") {
		t.Errorf("a line break in an address made a header")
	}
}
