package secureboot

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
	"github.com/dkms-guard/dkms-guard/internal/program"
)

func TestSBState(t *testing.T) {
	for out, want := range map[string]State{
		"SecureBoot enabled\n": On,
		"SecureBoot enabled\nSecureBoot validation is disabled in shim\n": Off,
		"SecureBoot disabled\nPlatform is in Setup Mode\n":                Off,
		"Cannot determine secure boot state.\n":                           Unknown,
		"":                                                                Unknown,
	} {
		if got := sbState(out).SecureBoot; got != want {
			t.Errorf("sbState(%q) = %s, want %s", out, got, want)
		}
	}
}

func TestTestKey(t *testing.T) {
	for _, c := range []struct {
		out, errOut string
		want        Enrolment
	}{
		{"/var/lib/dkms/mok.pub is not enrolled\n", "", NotEnrolled},
		{"/var/lib/dkms/mok.pub is already enrolled\n", "", Enrolled},
		{"/var/lib/dkms/mok.pub is already in db\n", "", Enrolled},
		{"/var/lib/dkms/mok.pub is already in the enrollment request\n", "", Pending},
		{"", "/var/lib/dkms/mok.pub is already in the built-in trusted keyring\n", Enrolled},
		{"", "Not a valid x509 certificate\n", EnrolmentUnknown},
	} {
		if got := testKey(c.out, c.errOut); got != c.want {
			t.Errorf("testKey(%q, %q) = %s, want %s", c.out, c.errOut, got, c.want)
		}
	}
}

func write(t *testing.T, root, name, data string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCertificate(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	if got, why := Certificate(p); got != p.MOKCert() || why != "" {
		t.Errorf("no framework.conf: %q %q, want dkms's default", got, why)
	}
	write(t, root, "etc/os-release", "ID=ubuntu\nID_LIKE=debian\n")
	if got, _ := Certificate(p); got != p.UbuntuMOKCert() {
		t.Errorf("Ubuntu without mok_signing_key: %q, want MOK.der", got)
	}
	write(t, root, "etc/dkms/framework.conf", "# mok_certificate=/x\nmok_signing_key=/root/mok.key\nmok_certificate=/root/first.der\n")
	write(t, root, "etc/dkms/framework.conf.d/90-mine.conf", "mok_certificate=\"/root/mok.der\"\n")
	if got, _ := Certificate(p); got != filepath.Join(root, "root/mok.der") {
		t.Errorf("framework.conf.d sets mok_certificate: %q", got)
	}
	write(t, root, "etc/dkms/framework.conf.d/91-odd.conf", "mok_certificate=$(cat /etc/where)\n")
	if got, why := Certificate(p); got != "" || why == "" {
		t.Errorf("a certificate set from an expansion: %q %q, want unknown", got, why)
	}
}

type fakeMokutil map[string][2]string

func (f fakeMokutil) Run(_ context.Context, args ...string) (string, string, error) {
	r, ok := f[args[0]]
	if !ok {
		return "", "", program.ErrNotFound
	}
	return r[0], r[1], nil
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	p := paths.New(root)
	mok := fakeMokutil{"--sb-state": {"SecureBoot enabled\n", ""}, "--test-key": {"x is not enrolled\n", ""}}
	c := Checker{Paths: p, Mokutil: mok}
	if got := c.Check(context.Background()); got.SecureBoot != Unknown || got.Lines(true) != nil {
		t.Errorf("without EFI: %+v", got)
	}
	write(t, root, "sys/firmware/efi/efivars/.keep", "")
	if got := c.Check(context.Background()); got.Enrolment != EnrolmentUnknown || got.Lines(true) != nil {
		t.Errorf("before dkms made its key: %+v", got)
	}
	write(t, root, "var/lib/dkms/mok.pub", "cert")
	got := c.Check(context.Background())
	want := Status{SecureBoot: On, Key: "/var/lib/dkms/mok.pub", Enrolment: NotEnrolled}
	if got != want {
		t.Errorf("Check = %+v, want %+v", got, want)
	}
	if l := got.Lines(true); len(l) != 2 || l[1] != "To enrol it: mokutil --import /var/lib/dkms/mok.pub, then reboot and confirm the key in MokManager." {
		t.Errorf("Lines = %q", l)
	}
	if l := got.Lines(false); l != nil {
		t.Errorf("Lines with no module built = %q", l)
	}
	c.Mokutil = fakeMokutil{}
	if got := c.Check(context.Background()); !reflect.DeepEqual(got, Status{SecureBoot: Unknown, Why: "mokutil is not installed"}) {
		t.Errorf("without mokutil: %+v", got)
	}
}
