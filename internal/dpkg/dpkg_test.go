package dpkg

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestOwners(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	p := filepath.Join(dir, "dpkg-query")
	script := `#!/bin/sh
[ "$1 $2" = "-S --" ] || exit 2
echo "diversion by dkms-guard from: /usr/src/hello-1.0"
echo "hello-dkms:amd64, other: /usr/src/hello-1.0"
echo "wifi-dkms: /usr/src/wifi-2.0"
echo "dpkg-query: no path found matching pattern /usr/src/foreign-1.0" >&2
exit 1
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Query{}.Owners(context.Background(), []string{"/usr/src/hello-1.0", "/usr/src/wifi-2.0", "/usr/src/foreign-1.0"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/usr/src/hello-1.0": "hello-dkms", "/usr/src/wifi-2.0": "wifi-dkms"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Owners = %v, want %v", got, want)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho 'dpkg-query: database locked' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := (Query{}).Owners(context.Background(), []string{"/x"}); err == nil {
		t.Error("exit 2 is not an error")
	}
}
