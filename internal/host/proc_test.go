package host

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dkms-guard/dkms-guard/internal/paths"
)

func writeStat(t *testing.T, root string, pid, ppid int, comm string, start uint64) {
	t.Helper()
	dir := filepath.Join(root, "proc", fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%d (%s) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, comm, ppid, start)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// apt runs a hook as: apt (long-lived) -> apt (forked child) -> sh -c -> hook.
func TestAptSkipsShellAndChild(t *testing.T) {
	root := t.TempDir()
	r := Host{Paths: paths.New(root)}
	writeStat(t, root, 100, 1, "apt-get", 1000)
	writeStat(t, root, 200, 100, "apt-get", 2000)
	writeStat(t, root, 300, 200, "sh", 3000)
	got := r.Apt(300)
	if want := (Proc{PID: 100, Start: 1000, Comm: "apt-get"}); got != want {
		t.Errorf("Apt = %+v, want %+v", got, want)
	}
	if !r.Alive(got) {
		t.Error("apt not alive")
	}
	writeStat(t, root, 100, 1, "apt-get", 1001) // pid reused
	if r.Alive(got) {
		t.Error("a reused pid counts as the same apt")
	}
	if r.Alive(Proc{PID: 999, Start: 1}) || r.Alive(Proc{PID: 100}) {
		t.Error("unknown process alive")
	}
}

func TestReadStatOddComm(t *testing.T) {
	root := t.TempDir()
	writeStat(t, root, 42, 7, "a) (b", 99)
	st, err := Host{Paths: paths.New(root)}.ReadStat(42)
	if err != nil || st.Comm != "a) (b" || st.PPID != 7 || st.Start != 99 || st.State != 'S' || st.Dead() {
		t.Errorf("ReadStat = %+v, %v", st, err)
	}
}
