package state

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dkms-guard/dkms-guard/internal/plan"
)

// File names inside the state directory.
const (
	RunFile     = "run.json"     // the apt run in progress: pre-invoke, apt-plan
	ResultsFile = "results.json" // per kernel and module: the last build outcome
	LastRunFile = "report.json"  // the last post-invoke summary, for status
)

// Proc identifies a process across pid reuse: the pid alone may be taken by
// another process after apt dies, its start time (in clock ticks since boot,
// /proc/PID/stat field 22) together with the boot id may not.
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Comm  string `json:"comm"`
}

// MV is one version of a DKMS module, kept as a value: text is made only
// where a line is printed (report.MV), and nothing splits a printed name.
type MV struct {
	Module  string `json:"module"`
	Version string `json:"version"`
}

// Key is "module/version", unambiguous since neither a module nor a
// version may contain "/" (each is a directory name in dkms's tree); it
// keys maps and owners.json, never a message.
func (mv MV) Key() string { return mv.Module + "/" + mv.Version }

// Module is one DKMS module version as pre-invoke saw it before dpkg ran.
type Module struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Kernels []string `json:"kernels,omitempty"`
}

// Plan is every package change apt announced for a run.
// Its records are apt-plan's own (package plan): one type from apt's
// protocol to run.json, with its JSON names.
type Plan struct {
	Changes []plan.Change `json:"changes"`
}

// Run is one apt invocation of dpkg, from pre-invoke to post-invoke.
type Run struct {
	Schema   int           `json:"schema"`
	ID       string        `json:"id"`
	Started  time.Time     `json:"started"`
	BootID   string        `json:"boot_id"`
	Apt      Proc          `json:"apt"`
	Snapshot []Module      `json:"snapshot"`
	Plan     *Plan         `json:"plan,omitempty"`
	Previous []Interrupted `json:"previous,omitempty"`
}

// Stale says why run is no longer in progress ("" when it is): the machine
// booted since (bootID differs) or its apt is gone (alive says no). A
// run.json from a dead apt or an earlier boot is never trusted as the
// current plan.
func (run *Run) Stale(bootID string, alive func(Proc) bool) string {
	if bootID != "" && run.BootID != bootID {
		return "the machine rebooted since"
	}
	if !alive(run.Apt) {
		return fmt.Sprintf("apt (pid %d) is gone", run.Apt.PID)
	}
	return ""
}

// Interrupted is what is kept of an apt run that never reached post-invoke.
type Interrupted struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	AptPID  int       `json:"apt_pid"`
	Why     string    `json:"why"`
	// Changed are the packages its plan installed, upgraded or configured:
	// the next run finishes their modules' builds for every kernel.
	Changed []plan.Change `json:"changed,omitempty"`
	// Removed are the packages its plan removed: their modules' kept
	// builds are dropped by the next run, never put back.
	Removed []string `json:"removed,omitempty"`
}

// Interrupt is what is kept of run when it never reached post-invoke.
func (run *Run) Interrupt(why string) Interrupted {
	in := Interrupted{ID: run.ID, Started: run.Started, AptPID: run.Apt.PID, Why: why}
	if run.Plan != nil {
		for _, c := range run.Plan.Changes {
			if c.Kind != plan.Remove {
				in.Changed = append(in.Changed, c)
			} else {
				in.Removed = append(in.Removed, c.Package)
			}
		}
	}
	return in
}

// Outcome of one module for one kernel.
type Outcome string

const (
	Installed   Outcome = "installed"
	Failed      Outcome = "failed"
	Unsupported Outcome = "unsupported" // dkms exit 77, BUILD_EXCLUSIVE_*, OBSOLETE_BY
	Skipped     Outcome = "skipped"     // not attempted: a dependency failed, no headers
)

// Cause is why a result has its outcome, where a reader must tell it
// apart from its human-readable reason. It is "" for most results, and
// for every result of a file written before it existed.
type Cause string

const (
	CauseNone         Cause = ""
	CauseBuildDepends Cause = "build_depends" // skipped: its BUILD_DEPENDS failed, are missing or form a cycle
	CauseTimedOut     Cause = "timed_out"     // failed: killed after --timeout
	CauseDepmod       Cause = "depmod"        // failed: installed, but depmod failed after
)

// Severity says how a failure is reported.
type Severity string

const (
	SevNone    Severity = ""
	SevWarning Severity = "warning" // foreign or unchanged module: the system still works
	SevError   Severity = "error"   // its own package was installed or upgraded in this run
)

// Result is the last outcome of one module for one kernel.
type Result struct {
	Run      string    `json:"run,omitempty"` // the apt run it happened in; "" outside apt
	Kernel   string    `json:"kernel"`
	Module   string    `json:"module"`
	Version  string    `json:"version"`
	Outcome  Outcome   `json:"outcome"`
	Cause    Cause     `json:"cause,omitempty"`
	Exit     int       `json:"exit,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Log      string    `json:"log,omitempty"`
	Severity Severity  `json:"severity,omitempty"`
	Owner    string    `json:"owner,omitempty"`
	By       string    `json:"by"` // autoinstall, post-invoke, rebuild
	Time     time.Time `json:"time"`
}

// Missing tells whether the result leaves the kernel without the module.
func (r Result) Missing() bool {
	return r.Outcome == Failed || (r.Outcome == Skipped && r.Severity != SevNone)
}

// Results holds one Result per kernel and module.
type Results struct {
	Schema  int      `json:"schema"`
	Results []Result `json:"results"`
}

// LoadResults reads results.json. A missing file (or a corrupt one, moved
// aside by Load) gives empty results, always with the current schema, so
// the caller can add to them and save.
func (s *Store) LoadResults() (*Results, error) {
	all := &Results{Schema: Schema}
	_, err := s.Load(ResultsFile, all)
	all.Schema = Schema
	return all, err
}

// Put records r, replacing an older result for the same kernel and module.
func (rs *Results) Put(r Result) {
	for i := range rs.Results {
		if rs.Results[i].Kernel == r.Kernel && rs.Results[i].Module == r.Module {
			rs.Results[i] = r
			return
		}
	}
	rs.Results = append(rs.Results, r)
	sort.SliceStable(rs.Results, func(i, j int) bool {
		a, b := rs.Results[i], rs.Results[j]
		if a.Kernel != b.Kernel {
			return a.Kernel < b.Kernel
		}
		return a.Module < b.Module
	})
}

// Get returns the result for kernel and module.
func (rs *Results) Get(kernel, module string) (Result, bool) {
	for _, r := range rs.Results {
		if r.Kernel == kernel && r.Module == module {
			return r, true
		}
	}
	return Result{}, false
}

// ForgetKernel drops every result for kernel (it is being removed).
func (rs *Results) ForgetKernel(kernel string) int {
	kept := rs.Results[:0]
	n := 0
	for _, r := range rs.Results {
		if r.Kernel == kernel {
			n++
			continue
		}
		kept = append(kept, r)
	}
	rs.Results = kept
	return n
}

// ForRun returns the results recorded during the runs with ids (in order).
func (rs *Results) ForRun(ids ...string) []Result {
	var out []Result
	for _, r := range rs.Results {
		for _, id := range ids {
			if id != "" && r.Run == id {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// LastRun is the last summary post-invoke printed, kept for status.
type LastRun struct {
	Schema      int           `json:"schema"`
	Run         string        `json:"run"`
	Time        time.Time     `json:"time"`
	Rows        []Result      `json:"rows"`
	Interrupted []Interrupted `json:"interrupted,omitempty"`
}

// BootFile records what dkms-guard did to the default boot entry.
const BootFile = "boot.json"

// Boot is the last boot-entry decision dkms-guard applied.
type Boot struct {
	Schema int `json:"schema"`
	// Want is the kernel dkms-guard settled on as the default entry ("" for
	// the bootloader's own default); it is not updated when the bootloader
	// could not be changed, so the next decision tries again. Next is the
	// one the next boot uses as far as dkms-guard knows ("" for an entry it
	// did not choose: the administrator's, or a later GRUB_DEFAULT's).
	Want string `json:"want,omitempty"`
	Next string `json:"next,omitempty"`
	// Pinned is the kernel actually pinned, with Loader ("GRUB",
	// "systemd-boot") and Where (the snippet's path, or the boot entry's
	// id) saying how; "" when dkms-guard changed no boot entry. Where is
	// a name, not a sentence: messages are made from it where printed.
	Pinned string `json:"pinned,omitempty"`
	Loader string `json:"loader,omitempty"`
	Where  string `json:"where,omitempty"`
	// Overridden is the default entry grub.cfg held instead of the pin,
	// last time dkms-guard looked and said so ("" when it held the pin).
	Overridden string `json:"overridden,omitempty"`
	// Lacking maps each bootable kernel to the modules the next boot needs
	// that it lacked when the decision was made.
	Lacking map[string][]MV `json:"lacking,omitempty"`
	// Newest is the newest bootable kernel when the decision was made:
	// what unpin takes, lacking what Lacking says.
	Newest string `json:"newest,omitempty"`
	// Waived records that the administrator took a kernel as it was
	// (dkms-guard unpin); nil when not, and in files written before it.
	Waived *Waiver `json:"waived,omitempty"`
	// Initrd caches the kernel modules of the reference initramfs:
	// listing one takes seconds, and every hook of an apt run decides.
	Initrd *Initrd   `json:"initrd,omitempty"`
	Time   time.Time `json:"time"`
}

// UnmarshalJSON reads boot.json, also as dkms-guard wrote it before
// Lacking held values and Where a name: there Lacking listed display
// text ("module/version", quoted when odd) and Where a sentence. Both are
// read back as well as they can be; a wrong guess only costs one more
// decision, never the pin, which the bootloader's own files tell.
func (b *Boot) UnmarshalJSON(data []byte) error {
	type plain Boot
	var p struct {
		plain
		Lacking map[string][]json.RawMessage `json:"lacking,omitempty"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*b = Boot(p.plain)
	b.Lacking = nil
	for kernel, list := range p.Lacking {
		if b.Lacking == nil {
			b.Lacking = map[string][]MV{}
		}
		for _, raw := range list {
			var mv MV
			if err := json.Unmarshal(raw, &mv); err != nil {
				var text string
				if err := json.Unmarshal(raw, &text); err != nil {
					return err
				}
				if u, err := strconv.Unquote(text); err == nil {
					text = u
				}
				mv.Module, mv.Version, _ = strings.Cut(text, "/")
			}
			b.Lacking[kernel] = append(b.Lacking[kernel], mv)
		}
	}
	if w, ok := strings.CutPrefix(b.Where, "GRUB_DEFAULT in "); ok {
		b.Where = w
	}
	if w, ok := strings.CutPrefix(b.Where, "the EFI variable LoaderEntryDefault (bootctl set-default "); ok {
		b.Where = strings.TrimSuffix(w, ")")
	}
	return nil
}

// Waiver is the administrator's choice to boot Kernel although it lacks
// Lacking: no pin while it is the newest kernel and lacks no other
// module the next boot needs. It lasts while Kernel is the newest kernel
// and still lacks one of them, needed now or not.
type Waiver struct {
	Kernel  string `json:"kernel"`
	Lacking []MV   `json:"lacking"`
}

// Initrd is what an initramfs image held when it had this size and mtime.
type Initrd struct {
	Image   string    `json:"image"`
	Size    int64     `json:"size"`
	MTime   time.Time `json:"mtime"`
	Modules []string  `json:"modules"` // the .ko paths inside
}

// OwnersFile caches which package ships each module version's source.
const OwnersFile = "owners.json"

// Owners maps "module/version" to the package that ships its source, ""
// for a module no package ships (added by hand): dpkg-query -S reads every
// package's file list, so it is asked only about versions not seen before.
type Owners struct {
	Schema int               `json:"schema"`
	Owners map[string]string `json:"owners"`
}

// Names (module, version, kernel) are bytes to dkms and the kernel, but a
// JSON string holds only UTF-8: encoding/json would replace a stray byte
// with U+FFFD and a failed module would come back as another name, "not
// built yet". Such a name is kept as nameMark plus its base64; no real
// name starts with a NUL byte.
const nameMark = "\x00base64:"

func encodeName(s string) string {
	if utf8.ValidString(s) && !strings.HasPrefix(s, nameMark) {
		return s
	}
	return nameMark + base64.StdEncoding.EncodeToString([]byte(s))
}

func decodeName(s string) string {
	if rest, ok := strings.CutPrefix(s, nameMark); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return s
}

// MarshalJSON keeps the names of r whatever bytes they hold.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	p := plain(r)
	p.Kernel, p.Module, p.Version = encodeName(r.Kernel), encodeName(r.Module), encodeName(r.Version)
	return json.Marshal(p)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(data []byte) error {
	type plain Result
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*r = Result(p)
	r.Kernel, r.Module, r.Version = decodeName(p.Kernel), decodeName(p.Module), decodeName(p.Version)
	return nil
}

// MarshalJSON keeps the names of m whatever bytes they hold.
func (m Module) MarshalJSON() ([]byte, error) {
	type plain Module
	p := plain(m)
	p.Name, p.Version = encodeName(m.Name), encodeName(m.Version)
	p.Kernels = make([]string, len(m.Kernels))
	for i, k := range m.Kernels {
		p.Kernels[i] = encodeName(k)
	}
	return json.Marshal(p)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (m *Module) UnmarshalJSON(data []byte) error {
	type plain Module
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*m = Module(p)
	m.Name, m.Version = decodeName(p.Name), decodeName(p.Version)
	for i, k := range p.Kernels {
		m.Kernels[i] = decodeName(k)
	}
	return nil
}

// MarshalJSON keeps the names of mv whatever bytes they hold.
func (mv MV) MarshalJSON() ([]byte, error) {
	type plain MV
	return json.Marshal(plain{Module: encodeName(mv.Module), Version: encodeName(mv.Version)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (mv *MV) UnmarshalJSON(data []byte) error {
	type plain MV
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*mv = MV{Module: decodeName(p.Module), Version: decodeName(p.Version)}
	return nil
}
