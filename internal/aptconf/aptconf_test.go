package aptconf

import "testing"

func TestParseGetBool(t *testing.T) {
	c := Parse([]byte("Unattended-Upgrade=\nUnattended-Upgrade::Mail=root@example.org\nunattended-upgrade::mailonlyonerror=YES\nUnattended-Upgrade::Origins-Pattern::=a=b\n"))
	if got := c.Get("Unattended-Upgrade::Mail"); got != "root@example.org" {
		t.Errorf("Mail = %q", got)
	}
	if !c.Bool("Unattended-Upgrade::MailOnlyOnError", false) {
		t.Errorf("MailOnlyOnError, written in another case, is not true")
	}
	if got := c.Get("Unattended-Upgrade::Origins-Pattern::"); got != "a=b" {
		t.Errorf("a value with '=' = %q", got)
	}
	if c.Bool("Unattended-Upgrade::Mail", true) != true || c.Bool("Unset", false) != false {
		t.Errorf("a value that is no boolean, or unset, is not the default")
	}
	if Parse([]byte("X=off\n")).Bool("X", true) {
		t.Errorf("off is not false")
	}
}
