package dkms_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/dkms"
	"github.com/dkms-guard/dkms-guard/internal/keep"
	"github.com/dkms-guard/dkms-guard/internal/program"
)

// Runner is what keeping needs of dkms (an external test package: keep
// imports dkms).
var _ keep.DKMS = dkms.Runner{}

// fakeDKMS puts a dkms first on PATH that logs its argv, one <arg> each,
// a line per run, to the returned file, and exits with the status in
// $dir/rc (0 when absent).
func fakeDKMS(t *testing.T) (calls, rc string) {
	t.Helper()
	dir := t.TempDir()
	calls, rc = filepath.Join(dir, "calls"), filepath.Join(dir, "rc")
	script := "#!/bin/sh\nfor a; do printf '<%s>' \"$a\"; done >>" + calls + "\necho >>" + calls +
		"\necho dkms output\n[ -f " + rc + " ] && exit $(cat " + rc + ")\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "dkms"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return calls, rc
}

func TestArchiveArguments(t *testing.T) {
	calls, _ := fakeDKMS(t)
	ctx := context.Background()
	r := dkms.Runner{}
	var out bytes.Buffer
	const k = "6.1.0-47-amd64"
	for _, err := range []error{
		r.MkTarball(ctx, "a b", "1.0", k, false, "/var/lib/dkms-guard/kept/x y.tar.gz", &out),
		r.MkTarball(ctx, "hello", "1.0", k, true, "/k/h.tar.gz", &out),
		r.LdTarball(ctx, "/k/h.tar.gz", false, &out),
		r.LdTarball(ctx, "/k/h.tar.gz", true, &out),
		r.InstallKept(ctx, "hello", "1.0", k, &out),
		r.Remove(ctx, "hello", "1.0", k, &out),
		r.Remove(ctx, "hello", "1.0", "", &out),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := "<mktarball><-m><a b><-v><1.0><-k><" + k + "><--archive=/var/lib/dkms-guard/kept/x y.tar.gz>\n" +
		"<mktarball><-m><hello><-v><1.0><-k><" + k + "><--archive=/k/h.tar.gz><--binaries-only>\n" +
		"<ldtarball><--archive=/k/h.tar.gz>\n" +
		"<ldtarball><--archive=/k/h.tar.gz><--force>\n" +
		"<install><--force><--no-depmod><-m><hello><-v><1.0><-k><" + k + ">\n" +
		"<remove><-m><hello><-v><1.0><-k><" + k + ">\n" +
		"<remove><-m><hello><-v><1.0><--all>\n"
	if data, _ := os.ReadFile(calls); string(data) != want {
		t.Errorf("calls\n%s\nwant\n%s", data, want)
	}
	if n := bytes.Count(out.Bytes(), []byte("dkms output\n")); n != 7 {
		t.Errorf("output of %d runs, want 7: %q", n, out.String())
	}
}

// ldtarball --force of a version still added loads the binaries, then
// add_module exits 3: that is success. Without --force, and any other
// status, it is an error.
func TestLdTarballAlreadyAdded(t *testing.T) {
	_, rc := fakeDKMS(t)
	ctx := context.Background()
	if err := os.WriteFile(rc, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := dkms.Runner{}
	if err := r.LdTarball(ctx, "/k/h.tar.gz", true, nil); err != nil {
		t.Errorf("--force, exit 3: %v", err)
	}
	var xe *program.ExitError
	if err := r.LdTarball(ctx, "/k/h.tar.gz", false, nil); !errors.As(err, &xe) || xe.Code != 3 {
		t.Errorf("no --force, exit 3: %v", err)
	}
	if err := os.WriteFile(rc, []byte("8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.LdTarball(ctx, "/k/h.tar.gz", true, nil); !errors.As(err, &xe) || xe.Code != 8 {
		t.Errorf("--force, exit 8: %v", err)
	}
	if err := r.MkTarball(ctx, "hello", "1.0", "k", false, "/k/h.tar.gz", nil); !errors.As(err, &xe) || xe.Code != 8 {
		t.Errorf("mktarball, exit 8: %v", err)
	}
}
