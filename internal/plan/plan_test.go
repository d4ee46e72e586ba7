package plan

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const v3 = `VERSION 3
APT::Architecture=amd64
Dir::Etc::main=apt.conf

wifi-dkms 1.0-1 all none < 2.0-1 all none /var/cache/apt/archives/wifi-dkms_2.0-1_all.deb
linux-headers-6.1.0-56-amd64 - - none < 6.1.192-2 amd64 none /var/cache/apt/archives/h.deb
hostname 3.23 amd64 none = 3.23 amd64 none /var/cache/apt/archives/hostname.deb
old-dkms 3.0 all none > - - none **REMOVE**
libfoo 2.0 amd64 same > 1.0 amd64 same /var/cache/apt/archives/libfoo.deb
half-dkms 1.0 all none = 1.0 all none **CONFIGURE**
wifi-dkms 1.0-1 all none < 2.0-1 all none **CONFIGURE**
linux-headers-6.1.0-56-amd64 - - none < 6.1.192-2 amd64 none **CONFIGURE**
`

func TestParseV3(t *testing.T) {
	p, err := ParseKeeping(strings.NewReader(v3), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Change{
		"wifi-dkms":                    {Package: "wifi-dkms", Arch: "all", OldVersion: "1.0-1", NewVersion: "2.0-1", Kind: Upgrade},
		"linux-headers-6.1.0-56-amd64": {Package: "linux-headers-6.1.0-56-amd64", Arch: "amd64", NewVersion: "6.1.192-2", Kind: Install},
		"hostname":                     {Package: "hostname", Arch: "amd64", OldVersion: "3.23", NewVersion: "3.23", Kind: Reinstall},
		"old-dkms":                     {Package: "old-dkms", Arch: "all", OldVersion: "3.0", Kind: Remove},
		"libfoo":                       {Package: "libfoo", Arch: "amd64", OldVersion: "2.0", NewVersion: "1.0", Kind: Downgrade},
		"half-dkms":                    {Package: "half-dkms", Arch: "all", OldVersion: "1.0", NewVersion: "1.0", Kind: Configure},
	}
	if len(p.Changes) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(p.Changes), len(want), p.Changes)
	}
	for _, c := range p.Changes {
		if w := want[c.Package]; c != w {
			t.Errorf("%s: got %+v, want %+v", c.Package, c, w)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"version 2": "VERSION 2\n\nhello 1.0 < 2.0 /x.deb\n",
		"version 1": "/var/cache/apt/archives/hello.deb\n",
	} {
		_, err := ParseKeeping(strings.NewReader(in), nil)
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
}

// One bad line loses nothing else; a .deb path with spaces is one field.
func TestParseKeepsGoodLines(t *testing.T) {
	in := "VERSION 3\n\n" +
		"hello 1.0 < 2.0 /x.deb\n" +
		"wifi-dkms 1.0 all none < 2.0 all none /var/cache/apt/archives/my dir/wifi-dkms_2.0_all.deb\n" +
		"odd 1.0 all none ? 2.0 all none **CONFIGURE**\n" +
		"zfs-dkms 2.1 all none < 2.2 all none **CONFIGURE**\n"
	p, err := ParseKeeping(strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 2 || p.Changes[0].Package != "wifi-dkms" || p.Changes[0].Kind != Upgrade || p.Changes[1].Package != "zfs-dkms" {
		t.Errorf("changes = %+v", p.Changes)
	}
	if len(p.Bad) != 2 || !strings.HasPrefix(p.Bad[0], "package line 1: ") || !strings.HasPrefix(p.Bad[1], "package line 3: ") {
		t.Errorf("bad = %q", p.Bad)
	}
}

// apt writes the whole protocol before it waits: the reader must drain it
// even when it gives up early, or apt gets EPIPE.
func TestParseDrainsInput(t *testing.T) {
	r := &countingReader{r: strings.NewReader("VERSION 2\n" + strings.Repeat("x y z\n", 10000))}
	ParseKeeping(r, nil)
	if r.eof != true {
		t.Fatal("input not read to its end")
	}
}

type countingReader struct {
	r   io.Reader
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func FuzzParse(f *testing.F) {
	f.Add(v3)
	f.Add("VERSION 3\n\n- - - - - - - - -\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseKeeping(strings.NewReader(s), nil)
		if err == nil && p == nil {
			t.Fatal("nil plan without error")
		}
		// Keeping some packages keeps exactly their changes.
		if kept, err := ParseKeeping(strings.NewReader(s), func(pkg []byte) bool { return len(pkg)%2 == 0 }); err == nil {
			var want []Change
			for _, c := range p.Changes {
				if len(c.Package)%2 == 0 {
					want = append(want, c)
				}
			}
			if fmt.Sprint(want) != fmt.Sprint(kept.Changes) && !(len(want) == 0 && len(kept.Changes) == 0) {
				t.Fatalf("kept %v, want %v", kept.Changes, want)
			}
		}
	})
}

// A dist-upgrade of 100k packages, of which a handful ship DKMS modules:
// what is kept, and allocated, grows with the handful.
func TestParseKeepingLarge(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("VERSION 3\nAPT::Architecture=amd64\n\n")
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(&sb, "pkg%d 1.0 amd64 none < 1.1 amd64 none /var/cache/apt/archives/pkg%d_1.1_amd64.deb\n", i, i)
	}
	sb.WriteString("zfs-dkms 2.1 all none < 2.2 all none **CONFIGURE**\nbroken line\n")
	in := sb.String()
	var p *Plan
	allocs := testing.AllocsPerRun(1, func() {
		var err error
		if p, err = ParseKeeping(strings.NewReader(in), func(pkg []byte) bool { return string(pkg) == "zfs-dkms" }); err != nil {
			t.Fatal(err)
		}
	})
	if len(p.Changes) != 1 || p.Changes[0].Kind != Configure || len(p.Bad) != 1 {
		t.Errorf("plan %+v", p)
	}
	if allocs > 100 {
		t.Errorf("%v allocations for 100k lines not kept", allocs)
	}
}

// A full-upgrade announces hundreds of packages.
func BenchmarkParse500(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("VERSION 3\nAPT::Architecture=amd64\n\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&sb, "pkg%d 1.0-%d amd64 none < 1.1-%d amd64 none /var/cache/apt/archives/pkg%d_1.1_amd64.deb\n", i, i, i, i)
		fmt.Fprintf(&sb, "pkg%d 1.0-%d amd64 none < 1.1-%d amd64 none **CONFIGURE**\n", i, i, i)
	}
	in := sb.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKeeping(strings.NewReader(in), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// A line longer than maxLine, in the configuration or among the package
// lines, is left out with the others kept: it used to end the scan
// ("token too long") and lose the whole plan.
func TestParseSkipsOverlongLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	in := "VERSION 3\nAPT::Long=" + long + "\n\n" +
		"wifi-dkms 1.0 all none < 2.0 all none **CONFIGURE**\n" +
		"odd " + long + " all none < 2.0 all none **CONFIGURE**\n" +
		"zfs-dkms 2.1 all none < 2.2 all none **CONFIGURE**\n"
	p, err := ParseKeeping(strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 2 || p.Changes[0].Package != "wifi-dkms" || p.Changes[1].Package != "zfs-dkms" {
		t.Errorf("changes = %+v", p.Changes)
	}
	if len(p.Bad) != 1 || !strings.HasPrefix(p.Bad[0], "package line 2: longer than ") {
		t.Errorf("bad = %q", p.Bad)
	}
}
