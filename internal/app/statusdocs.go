package app

// status --json's schema in words: the JSON OUTPUT section of
// dkms-guard(8). TestStatusJSONDocumented checks that statusFields names
// every field statusJSON and statusUserJSON can print, and nothing else.

// statusJSONIntro is the stability promise, before the fields.
const statusJSONIntro = "`dkms-guard status --json` prints one JSON object on standard output, " +
	"for configuration-management tools and monitoring. It is a stable interface: " +
	"`schema` is its version (today `1`), and within a schema version fields are " +
	"only added, never renamed, removed or given another meaning; code, reason " +
	"and outcome values may be added too, so treat an unknown one as \"not installed\". " +
	"The exit status is `status`'s. Times are RFC 3339 in UTC. A kernel, module " +
	"or version name that is not UTF-8 is written as a NUL byte, `base64:` and its " +
	"bytes in base64.\n\n" +
	"Every field follows, by its path: `a.b` is object `a`'s field `b`, " +
	"`a[]` an array's items, `a{}` an object's values keyed by a name (a kernel, a module)."

// statusFields is every field of status --json, by its path.
var statusFields = []struct{ path, meaning string }{
	{"schema", "this document's schema version: `1`"},
	{"failed", "true when a kernel lacks a module because its build failed (status exits 1)"},
	{"last_run", "the summary of the last apt run that built DKMS modules; `null` when none was recorded"},
	{"last_run.schema", "the schema of the recorded summary"},
	{"last_run.run", "the apt run's id (empty outside apt)"},
	{"last_run.time", "when post-invoke wrote it"},
	{"last_run.rows", "what became of each module in that run, one object per kernel and module"},
	{"last_run.rows[].run", "the apt run the result belongs to"},
	{"last_run.rows[].kernel", "the kernel release"},
	{"last_run.rows[].module", "the DKMS module"},
	{"last_run.rows[].version", "its version"},
	{"last_run.rows[].outcome", "`installed`, `failed`, `unsupported` (dkms exit 77, `BUILD_EXCLUSIVE_*`, `OBSOLETE_BY`) or `skipped`"},
	{"last_run.rows[].cause", "why, where a program must tell it apart: `build_depends`, `timed_out`, `depmod`; absent for most"},
	{"last_run.rows[].exit", "dkms's exit status, when it failed"},
	{"last_run.rows[].reason", "the reason in words, as the summary shows it"},
	{"last_run.rows[].log", "the build log"},
	{"last_run.rows[].severity", "`error` (the module's own package changed in the run) or `warning`; absent when it built"},
	{"last_run.rows[].owner", "the package that ships the module, when known"},
	{"last_run.rows[].by", "what built it: `autoinstall`, `post-invoke` or `rebuild`"},
	{"last_run.rows[].time", "when"},
	{"last_run.interrupted", "apt runs that died before post-invoke, folded into this one"},
	{"last_run.interrupted[].id", "that run's id"},
	{"last_run.interrupted[].started", "when it started"},
	{"last_run.interrupted[].apt_pid", "its apt's pid"},
	{"last_run.interrupted[].why", "how dkms-guard knows it is over (apt gone, a reboot)"},
	{"last_run.interrupted[].changed", "the packages it installed, upgraded or configured"},
	{"last_run.interrupted[].changed[].package", "a package name"},
	{"last_run.interrupted[].changed[].arch", "its architecture"},
	{"last_run.interrupted[].changed[].old_version", "the version before"},
	{"last_run.interrupted[].changed[].new_version", "the version after"},
	{"last_run.interrupted[].changed[].kind", "`install`, `upgrade`, `downgrade`, `reinstall`, `configure` or `remove`"},
	{"last_run.interrupted[].removed", "the packages it removed: their modules' kept builds are dropped, not put back"},
	{"kernels", "every kernel in `/lib/modules`, newest first (GRUB's order)"},
	{"kernels[].kernel", "the kernel release"},
	{"kernels[].running", "it is the running kernel"},
	{"kernels[].bootable", "it has an image in `/boot`"},
	{"kernels[].headers", "its headers are installed"},
	{"kernels[].installed", "the DKMS modules it has, as `module/version`"},
	{"kernels[].missing", "the DKMS modules it lacks (a module it does not support is not missing)"},
	{"kernels[].missing[].module", "the module"},
	{"kernels[].missing[].version", "the version it lacks"},
	{"kernels[].missing[].why", "why, in words"},
	{"kernels[].missing[].reason", "why, as a code: `build_failed`, `timed_out`, `depmod_failed`, `depends_failed` (its `BUILD_DEPENDS` failed or are missing), `no_headers`, `not_built` (not tried yet, or interrupted), `unknown` (its `dkms.conf` cannot be read)"},
	{"kernels[].missing[].failed", "its build failed: this makes `failed` true"},
	{"kernels[].missing[].log", "the build log, when there is one"},
	{"kernels[].kept", "the builds among `installed` that dkms-guard put back because the version that was to replace them (a newer one, or the same one rebuilt after the kernel was reinstalled) failed for this kernel, does not support it or was not built: the kernel has the module (it is not missing, and the boot decision counts it), that version did not install"},
	{"kernels[].kept[].module", "the module"},
	{"kernels[].kept[].version", "the version kept, installed now"},
	{"kernels[].kept[].failed_version", "the version that did not install (the same as `version` when the kernel's own rebuild of it failed)"},
	{"kernels[].kept[].why", "why that version did not install, in words"},
	{"kernels[].kept[].reason", "why, as a code: one of `missing[].reason`'s, or `unsupported` (it does not support this kernel)"},
	{"kernels[].kept[].log", "that version's build log, when there is one"},
	{"boot", "the next boot"},
	{"boot.next_boot", "the kernel the next boot uses, as far as dkms-guard knows"},
	{"boot.pinned", "the kernel dkms-guard keeps the default boot entry, when it does"},
	{"boot.loader", "how: `GRUB` or `systemd-boot`"},
	{"boot.where", "the GRUB snippet or the systemd-boot entry"},
	{"boot.overridden_by", "the default entry `grub.cfg` holds instead of the pin (a later `GRUB_DEFAULT` won)"},
	{"boot.unrecorded_pin", "dkms-guard's GRUB snippet is there but `boot.json` does not record it"},
	{"boot.critical", "the boot-critical DKMS modules: module name to its reasons"},
	{"boot.needed", "every DKMS module that keeps an older kernel the default when the newest lacks it: module name to its class and reasons"},
	{"boot.needed{}.class", "`boot-critical` or `in-use`"},
	{"boot.needed{}.why", "the reasons, in words (in the initramfs; loaded now; which file loads it at boot)"},
	{"boot.keep_kernel_for", "the `KEEP_KERNEL_FOR` setting: `in-use`, `boot-critical` or `nothing`"},
	{"boot.waived", "the kernel the administrator took with `dkms-guard unpin` although it lacks needed modules, while that choice stands; absent otherwise"},
	{"boot.waived.kernel", "that kernel"},
	{"boot.waived.lacking", "the needed modules it lacked when taken"},
	{"boot.waived.lacking[].module", "the module"},
	{"boot.waived.lacking[].version", "the version"},
	{"boot.lacking", "kernel to the needed (boot-critical or in-use) modules it lacks"},
	{"boot.lacking{}[].module", "the module"},
	{"boot.lacking{}[].version", "the version"},
	{"boot.managed", "`MANAGE_BOOT_ENTRY` is yes"},
	{"kept", "the builds dkms-guard keeps (`/var/lib/dkms-guard/kept`) until their replacement is installed"},
	{"kept.dir", "the directory of their archives"},
	{"kept.builds", "how many builds are kept, one per module, version and kernel"},
	{"kept.put_back", "how many of them were put back (listed in `kernels[].kept`); the others wait for the run that kept them to settle"},
	{"kept.bytes", "the space their archives take, in bytes"},
	{"secure_boot", "whether modules dkms signs can load (mokutil)"},
	{"secure_boot.state", "Secure Boot: `on`, `off` or `unknown` (no UEFI, no mokutil, an answer not understood)"},
	{"secure_boot.why", "why the state or the key's enrolment is unknown"},
	{"secure_boot.key", "dkms's signing certificate, while Secure Boot is on"},
	{"secure_boot.key_enrolment", "`enrolled`, `not-enrolled`, `pending` (imported, confirmed at the next boot in MokManager) or `unknown`"},
	{"notice", "for a user who may not read root's state, instead of the above: the notice's text (empty when there is none)"},
	{"partial", "set, with `notice`, when the answer is the notice's: `run as root for the full status`"},
}
