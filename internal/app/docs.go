package app

// The documentation's one source: the man page dkms-guard(8) and the bash
// completion are generated from the CLI's own definitions (the commands,
// their flags and descriptions) and from the tables below and in
// statusdocs.go; --help shows the overview, exit status and environment
// too. README.md copies only settingsTable (TestREADMESettings keeps it in
// step). cmd/dkms-guard-docs writes them at build time.

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// overview is what dkms-guard is, for --help and DESCRIPTION.
const overview = `dkms-guard stands between dkms and the kernel packages on Debian and Ubuntu.
When a new kernel or its headers are installed, it builds every DKMS module
for that kernel one by one, and a module that fails to build becomes a
warning instead of a failed kernel package and a half-configured system.
Modules whose own packages were installed or upgraded in the same apt run
are still built, for every installed kernel with headers, and their
failures are reported as errors. While the newest kernel lacks a module the
machine cannot boot without, or one it uses (loaded now or at boot), the
newest kernel that has them all stays the default boot entry.

Before a module's package is upgraded or a kernel is reinstalled, which
removes the module's builds before anyone knows whether the new ones
build, dkms-guard keeps them (dkms mktarball); a kernel left without any
version of the module gets its kept build back (dkms ldtarball, dkms
install), until a newer version installs for it (KEEP_WORKING_BUILDS).

The hook commands are run by apt (apt-plan, pre-invoke, post-invoke), by the
diverted /usr/lib/dkms/dkms_autoinstaller (autoinstall) and by the kernel
hook directories (kernel-preinst, kernel-postinst, kernel-prerm); drop-kept
by dkms-guard's own prerm. status, rebuild and unpin are for people.

Messages go to standard error as "E: dkms-guard: ...", "W: dkms-guard: ..."
and "N: dkms-guard: ...". State lives in /var/lib/dkms-guard, build logs in
/var/log/dkms-guard/KERNEL/, and /var/lib/dkms-guard.notice exists while a
kernel lacks a module or runs a kept build.`

// envTable is the environment dkms-guard reads.
var envTable = []struct{ name, meaning string }{
	{"DKMS_GUARD_ROOT", "same as --root"},
	{"DKMS_GUARD_TIMEOUT", "same as --timeout; a bad value in a hook is a warning and the default"},
	{"DKMS_GUARD_JOBS", "same as --jobs; a bad value in a hook is a warning and JOBS from /etc/default/dkms-guard"},
	{"APT_HOOK_INFO_FD", "set by apt: the descriptor apt-plan reads apt's protocol from (standard input when unset)"},
}

// filesTable is every file dkms-guard reads or writes of its own.
var filesTable = []struct{ path, meaning string }{
	{"/etc/default/dkms-guard", "the settings: see SETTINGS"},
	{"/var/lib/dkms-guard/run.json", "the apt run in progress: apt's pid, start time and boot id, the snapshot, the plan"},
	{"/var/lib/dkms-guard/results.json", "last outcome per kernel and module"},
	{"/var/lib/dkms-guard/report.json", "the last post-invoke summary, for status"},
	{"/var/lib/dkms-guard/boot.json", "the boot-entry decision, while a kernel lacks a boot-critical or in-use module, and the kernel dkms-guard unpin took"},
	{"/var/lib/dkms-guard/owners.json", "which package ships each module version (dpkg-query -S is slow)"},
	{"/var/lib/dkms-guard/kept.json", "the kept builds: module, version, kernel, why, its archive and size, and whether and when it was put back in place of which failed version"},
	{"/var/lib/dkms-guard/kept/", "the kept builds' dkms archives (dkms mktarball), until the module's replacement is installed for that kernel, the kernel or the module's package is removed, or dkms-guard is"},
	{"/var/lib/dkms-guard/mailed.json", "the failed builds already mailed during the current unattended-upgrades run (its process), so that each is mailed once"},
	{"/var/lib/dkms-guard/lock", "flock for state updates"},
	{"/var/lib/dkms-guard/boot.lock", "flock: one dkms-guard deciding the boot entry at a time (it may run update-initramfs and update-grub); taken before the state lock, never while holding it"},
	{"/run/dkms-guard/build.lock", "flock: one dkms-guard building at a time; it names the builds running (process group, start time, boot and session), so that the next one stops only a build it can identify if that one is killed"},
	{"/var/log/dkms-guard/KERNEL/MODULE-VERSION.log", "dkms's output for that build, with a copy of dkms's make.log"},
	{"/var/log/dkms-guard/kept.log", "dkms's output when builds are kept, put back and dropped"},
	{"/usr/lib/dkms/dkms_autoinstaller", "dkms-guard's shim, which runs autoinstall (or, without dkms-guard, dkms's own); dpkg-divert keeps dkms's at dkms_autoinstaller.distrib until dkms-guard is removed"},
	{"/etc/kernel/preinst.d/00dkms-guard", "the hook that runs kernel-preinst, before dkms's own preinst.d hook"},
	{"/etc/kernel/postinst.d/dkms-guard", "the hook that runs kernel-postinst, after dkms's own postinst.d hook and before initramfs-tools and zz-update-grub"},
	{"/etc/kernel/prerm.d/dkms-guard", "the hook that runs kernel-prerm, which forgets a removed kernel's results and logs and drops the builds kept for it"},
	{"/etc/apt/apt.conf.d/80dkms-guard", "the three apt hooks: pre-invoke, apt-plan, post-invoke; removing the package without purging it renames it 80dkms-guard.disabled, which apt ignores, and reinstalling it renames it back"},
	{"/var/lib/dkms-guard.notice", "present while a kernel lacks a module whose build failed or a boot-critical or in-use one, or runs a kept build in place of a version that did not install, or dkms's signing key is not enrolled under Secure Boot; its opening paragraph (at most four lines) is what the login and update-notifier show"},
	{"/etc/update-motd.d/95-dkms-guard", "the login message (pam_motd): the notice's opening paragraph, while there is one"},
	{"/var/lib/update-notifier/user.d/dkms-guard-module-missing", "update-notifier's hook (Ubuntu desktops), while a kernel lacks a module whose build failed or a boot-critical or in-use one, or runs a kept build; written only where user.d exists"},
	{"METRICS_DIR/dkms-guard.prom", "Prometheus textfile metrics (METRICS_DIR in /etc/default/dkms-guard, default /var/lib/prometheus/node-exporter): modules missing and why, kept builds put back, the boot pin, the last run; written only where the directory exists"},
	{"/etc/default/grub.d/zz-dkms-guard.cfg", "the GRUB pin, while dkms-guard keeps an older kernel the default; linked to /dev/null, it keeps dkms-guard from ever pinning"},
	{"/etc/apt/apt.conf.d/01dkms-guard-pinned-kernel", "while a pin stands: APT::NeverAutoRemove patterns that keep apt autoremove from removing the pinned kernel's packages"},
}

// settingsIntro, settingsTable and settingsCombine are SETTINGS, the file
// /etc/default/dkms-guard; default/dkms-guard assigns each setting its
// default, and README.md copies the table (TestSettingsShipped and
// TestREADMESettings check them).
const settingsIntro = "The settings are in /etc/default/dkms-guard, in shell syntax. dkms-guard " +
	"reads its plain assignments and never runs the file. A setting it cannot read " +
	"for certain (set conditionally or from an expansion), or with a bad value, is a " +
	"W: line and the default; without the file, every setting is its default."

var settingsTable = []struct{ name, def, meaning string }{
	{"CRITICAL_MODULES", "", "more boot-critical modules (DKMS or kernel module names, separated by spaces), beyond those dkms-guard finds itself: in the running kernel's initramfs or `/etc/initramfs-tools/modules`, or the file system of `/` or `/boot`"},
	{"NOT_CRITICAL_MODULES", "", "modules never to treat as boot-critical, whatever dkms-guard finds; one in use still keeps the old kernel (see `KEEP_KERNEL_FOR`)"},
	{"MANAGE_BOOT_ENTRY", "yes", "`yes`: while the newest kernel lacks a module that counts (`KEEP_KERNEL_FOR`), keep the newest kernel that has them all the default boot entry (GRUB: a snippet in `/etc/default/grub.d`, an administrator's own `GRUB_DEFAULT` left alone; systemd-boot: `bootctl set-default`); `no`: never touch the boot entry, only say what the next boot will be"},
	{"JOBS", "auto", "how many modules build at once: `auto` (as many as CPUs, at most 4) or a number from 1 to 64; `1` builds one module at a time with dkms's own `make -j`, as stock dkms does, and `--jobs` and `DKMS_GUARD_JOBS` override it"},
	{"KEEP_KERNEL_FOR", "in-use", "which modules, lacking in the newest kernel, keep an older kernel the default: `in-use` (boot-critical modules and modules loaded now or at boot), `boot-critical` (only those the machine cannot boot without), `nothing` (the newest kernel always becomes the default)"},
	{"METRICS_DIR", "/var/lib/prometheus/node-exporter", "node_exporter's textfile directory, where dkms-guard keeps `dkms-guard.prom` if the directory exists; empty: no metrics"},
	{"KEEP_WORKING_BUILDS", "yes", "`yes`: keep a module's working builds (`dkms mktarball`) before its package is upgraded or its kernel reinstalled, and put them back where the new ones fail; `no`: keep nothing new (builds kept before are still put back where needed, and go once replaced)"},
}

const settingsCombine = "`KEEP_KERNEL_FOR` says which modules count, and `MANAGE_BOOT_ENTRY` " +
	"whether dkms-guard acts on them: with `no` it changes no boot entry but still " +
	"says, E: or W:, what the next boot lacks; with `KEEP_KERNEL_FOR=nothing` no " +
	"module counts, and nothing is said about the next boot (the build failures " +
	"are still reported). `CRITICAL_MODULES` makes a module boot-critical (an E: " +
	"line, and it counts with `boot-critical`). `NOT_CRITICAL_MODULES` only takes " +
	"a module out of boot-critical: if it is in use it still keeps the old kernel, " +
	"with a W: line, because it says the machine boots without the module, not " +
	"that nobody uses it (take the new kernel with `dkms-guard unpin`, or set " +
	"`KEEP_KERNEL_FOR=boot-critical`)."

// messages are what each prefix means, for MESSAGES; the overview names the
// prefixes, internal/report owns them.
var messages = []struct{ prefix, meaning string }{
	{"E:", "act on it: a module whose own package was installed or upgraded in this apt run did not build, or the newest kernel lacks a boot-critical module; also the one line per module when a kept build is put back in its place, and dkms-guard's own trouble (`dkms-guard status` exits 3 until it is fixed)"},
	{"W:", "something is missing but the system works: a module whose package this apt run did not change did not build, or the newest kernel lacks a module in use; also a kept build put back where the new version does not support the kernel, or where the failure it stands in for was a W: (a kernel's rebuild after a reinstall), a state file that was corrupt and is moved aside, and a setting that cannot be read, whose default is used"},
	{"N:", "information: what was built, which kernel the next boot uses, how to retry"},
}

const messagesOneLine = "Each message is one line that names the object in full: the module and " +
	"its version, the kernel, dkms's exit status and the build log, so that one grep finds everything about it."

// examples show what a user sees after a failed build, and how to retry.
var examples = []struct{ text, code string }{
	{"After an apt run that installed new kernel headers, one module did not build for the new kernel. apt exits 0 and prints:",
		`W: dkms-guard: oldvendor/1.0: build failed for 6.1.0-56-amd64
   (exit 10), see /var/log/dkms-guard/6.1.0-56-amd64/oldvendor-1.0.log
N: dkms-guard: DKMS modules in this apt run:
N: dkms-guard:   KERNEL          MODULE         RESULT
N: dkms-guard:   6.1.0-56-amd64  hello/1.0      installed
N: dkms-guard:   6.1.0-56-amd64  oldvendor/1.0  FAILED (exit 10), log
   /var/log/dkms-guard/6.1.0-56-amd64/oldvendor-1.0.log [W]
N: dkms-guard: 6.1.0-56-amd64 lacks oldvendor/1.0; other kernels'
   modules and initramfs were not touched
N: dkms-guard: kernels with all their DKMS modules, safe to boot:
   6.1.0-47-amd64
N: dkms-guard: retry once the cause is fixed:
   dkms-guard rebuild --kernel 6.1.0-56-amd64
N: dkms-guard: details: dkms-guard status; notice:
   /var/lib/dkms-guard.notice`},
	{"See what each kernel has and lacks, why, and which kernel boots next (as root: another user only gets the notice):", "sudo dkms-guard status"},
	{"Read the build log, fix the cause (install the module's build dependencies, or a newer module package), then retry:",
		"less /var/log/dkms-guard/6.1.0-56-amd64/oldvendor-1.0.log\nsudo dkms-guard rebuild --kernel 6.1.0-56-amd64"},
	{"Boot the newest kernel anyway, although it lacks a boot-critical or in-use module (until a newer kernel comes or the module builds):", "sudo dkms-guard unpin"},
}

// seeAlso are the manual pages of the programs dkms-guard works with.
const seeAlso = "dkms(8), apt.conf(5), dpkg-divert(1), update-grub(8), bootctl(1), lsinitramfs(8)"

func envHelp() string {
	var b strings.Builder
	b.WriteString("ENVIRONMENT\n")
	for _, e := range envTable {
		line := fmt.Sprintf("   %-19s", e.name)
		b.WriteString(wrap(line, e.meaning, 23) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// exitHelp is exitTable as the EXIT STATUS section of --help.
func exitHelp() string {
	var b strings.Builder
	b.WriteString("EXIT STATUS\n")
	for _, e := range exitTable {
		b.WriteString(wrap(fmt.Sprintf("   %d ", e.code), strings.ReplaceAll(e.meaning, "`", ""), 6) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// wrap continues first with the words of text, at most 76 columns wide,
// indenting continuation lines by indent.
func wrap(first, text string, indent int) string {
	var b strings.Builder
	line := first
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > 76 && strings.TrimSpace(line) != "" {
			b.WriteString(line + "\n")
			line = strings.Repeat(" ", indent-1)
		}
		line += " " + w
	}
	b.WriteString(line)
	return b.String()
}

// Man is the dkms-guard(8) manual page in roff.
func Man(version string) string {
	a := newApp(version, &cmdEnv{})
	m := &manPage{}
	m.head(a, version)
	m.commands(a)
	m.options(a)
	m.settings()
	m.messages()
	m.exitStatus()
	m.tables()
	m.statusJSON()
	m.examples()
	return m.String()
}

// manPage is the roff text being written, a section at a time.
type manPage struct{ strings.Builder }

// w writes one line of roff.
func (m *manPage) w(format string, args ...any) { fmt.Fprintf(&m.Builder, format+"\n", args...) }

// item is one tagged paragraph: term in font (".B" or ".I"), then text,
// both already escaped.
func (m *manPage) item(font, term, text string) {
	m.w(".TP")
	m.w("%s %s", font, term)
	m.w("%s", text)
}

// head is the title, NAME, SYNOPSIS and DESCRIPTION.
func (m *manPage) head(a *cli.App, version string) {
	m.w(`.\" Generated by dkms-guard-docs from dkms-guard's command definitions; do not edit.`)
	m.w(`.TH DKMS\-GUARD 8 "" "dkms-guard %s" "System Administration"`, roffText(version))
	// Unhyphenated, ragged right: a setting or path broken across lines
	// cannot be found with the pager's search.
	m.w(".nh")
	m.w(".ad l")
	m.w(".SH NAME")
	m.w(`dkms\-guard \- %s`, roffText(a.Usage))
	m.w(".SH SYNOPSIS")
	m.w(".B dkms\\-guard")
	m.w(`.RB [ \-\-root\~\fIDIR\fR ]`)
	m.w(`.RB [ \-\-timeout\~\fIDURATION\fR ]`)
	m.w(`.RB [ \-\-jobs\~\fIN\fR ]`)
	m.w(`.I COMMAND`)
	m.w(`.RI [ ARGS ...]`)
	m.w(".SH DESCRIPTION")
	paragraphs(&m.Builder, overview)
}

// commands is COMMANDS: each command's usage, description and flags.
func (m *manPage) commands(a *cli.App) {
	m.w(".SH COMMANDS")
	for _, c := range a.Commands {
		m.w(".SS %s", roffText(c.Name))
		m.w(".B %s", roffText(c.UsageText))
		m.w(".PP")
		m.w("%s.", roffText(strings.ToUpper(c.Usage[:1])+c.Usage[1:]))
		paragraphs(&m.Builder, c.Description)
		for _, f := range c.Flags {
			flagItem(&m.Builder, f)
		}
	}
}

// options is OPTIONS: the global flags, --help and --version.
func (m *manPage) options(a *cli.App) {
	m.w(".SH OPTIONS")
	for _, f := range a.Flags {
		flagItem(&m.Builder, f)
	}
	m.w(".TP")
	m.w(`.BR \-\-help ", " \-h`)
	m.w("Show the help, of dkms\\-guard or of a command (dkms\\-guard \\fICOMMAND\\fR \\-\\-help).")
	m.w(".TP")
	m.w(`.BR \-\-version ", " \-v`)
	m.w("Print the version.")
}

// settings is SETTINGS, from settingsTable: each setting as the file
// assigns its default.
func (m *manPage) settings() {
	m.w(".SH SETTINGS")
	m.w(".PP")
	m.w("%s", manText(settingsIntro))
	for _, s := range settingsTable {
		m.item(".B", roffText(s.name)+`=\(dq`+roffText(s.def)+`\(dq`, manText(s.meaning))
	}
	m.w(".PP")
	m.w("%s", manText(settingsCombine))
}

// messages is MESSAGES: what each prefix means.
func (m *manPage) messages() {
	m.w(".SH MESSAGES")
	for _, msg := range messages {
		m.item(".B", msg.prefix, manText(msg.meaning))
	}
	m.w(".PP")
	m.w("%s", manText(messagesOneLine))
}

// statusJSON is JSON OUTPUT, from statusFields.
func (m *manPage) statusJSON() {
	m.w(".SH JSON OUTPUT")
	for _, p := range strings.Split(statusJSONIntro, "\n\n") {
		m.w(".PP")
		m.w("%s", manText(p))
	}
	for _, f := range statusFields {
		m.item(".B", roffText(f.path), manText(f.meaning))
	}
}

// exitStatus is EXIT STATUS, from exitTable.
func (m *manPage) exitStatus() {
	m.w(".SH EXIT STATUS")
	for _, e := range exitTable {
		m.item(".B", strconv.Itoa(e.code), manText(e.meaning))
	}
	m.w(".PP")
	m.w("The hooks never exit non\\-zero because of a module or of dkms\\-guard's own trouble:")
	m.w("a failing hook would fail the kernel package or make apt report a finished upgrade as failed.")
	m.w("Their trouble is an E: line, and")
	m.w(".B dkms\\-guard status")
	m.w("exits 3 until it is fixed.")
}

// tables are ENVIRONMENT and FILES.
func (m *manPage) tables() {
	m.w(".SH ENVIRONMENT")
	for _, e := range envTable {
		m.item(".B", roffText(e.name), roffText(e.meaning))
	}
	m.w(".SH FILES")
	for _, f := range filesTable {
		m.item(".I", roffText(f.path), roffText(f.meaning))
	}
}

// examples is EXAMPLES and SEE ALSO.
func (m *manPage) examples() {
	m.w(".SH EXAMPLES")
	for _, e := range examples {
		m.w(".PP")
		m.w("%s", roffText(e.text))
		m.w(".PP")
		m.w(".RS 4")
		m.w(".nf")
		for _, l := range strings.Split(e.code, "\n") {
			m.w("%s", roffText(l))
		}
		m.w(".fi")
		m.w(".RE")
	}
	m.w(".SH SEE ALSO")
	var refs []string
	for _, r := range strings.Split(seeAlso, ", ") {
		name, sect, _ := strings.Cut(strings.TrimSuffix(r, ")"), "(")
		refs = append(refs, fmt.Sprintf(".BR %s (%s)", roffText(name), sect))
	}
	m.w("%s", strings.Join(refs, " ,\n"))
}

// flagItem is one option, as urfave/cli names it: `--kernel KERNEL, -k KERNEL`.
func flagItem(b *strings.Builder, f cli.Flag) {
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return
	}
	placeholder, usage := unquoteUsage(df.GetUsage())
	var names []string
	for _, n := range f.Names() {
		dash := "\\-"
		if len(n) > 1 {
			dash = "\\-\\-"
		}
		item := `\fB` + dash + roffText(n) + `\fR`
		if df.TakesValue() {
			if placeholder == "" {
				placeholder = "VALUE"
			}
			item += ` \fI` + roffText(placeholder) + `\fR`
		}
		names = append(names, item)
	}
	fmt.Fprintf(b, ".TP\n%s\n", strings.Join(names, ", "))
	text := strings.ToUpper(usage[:1]) + usage[1:]
	if v := df.GetDefaultText(); v != "" && df.TakesValue() {
		text += " (default: " + v + ")"
	}
	if env := df.GetEnvVars(); len(env) > 0 {
		text += "; also " + strings.Join(env, ", ")
	}
	fmt.Fprintf(b, "%s.\n", roffText(text))
}

// unquoteUsage splits a flag's usage into its `PLACEHOLDER` and the text
// without the backquotes, as urfave/cli's help does.
func unquoteUsage(usage string) (string, string) {
	start := strings.IndexByte(usage, '`')
	if start < 0 {
		return "", usage
	}
	end := strings.IndexByte(usage[start+1:], '`')
	if end < 0 {
		return "", usage
	}
	name := usage[start+1 : start+1+end]
	return name, usage[:start] + name + usage[start+1+end+1:]
}

// paragraphs writes text's blank-line-separated paragraphs; a paragraph
// whose lines are indented is kept as it is, preformatted.
func paragraphs(b *strings.Builder, text string) {
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		b.WriteString(".PP\n")
		if strings.HasPrefix(p, " ") || strings.Contains(p, "\n ") {
			b.WriteString(".nf\n")
			for _, l := range strings.Split(p, "\n") {
				b.WriteString(roffText(l) + "\n")
			}
			b.WriteString(".fi\n")
			continue
		}
		b.WriteString(roffText(strings.Join(strings.Fields(p), " ")) + "\n")
	}
}

// roffText escapes text for roff: backslashes, minus signs, and a leading
// dot or quote that would start a request.
func roffText(s string) string {
	return lineStart(roffEscape(s))
}

// roffEscape escapes backslashes and minus signs.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// lineStart keeps a line of text from starting with a dot or a quote,
// which would start a request.
func lineStart(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// manText is roffText for the tables' text, whose `backquoted` words (a
// command, a value, a field) are set in bold, as man-pages(7) sets what
// is typed as shown; --help drops the backquotes instead.
func manText(s string) string {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 { // a lone backquote: no code to mark
		return roffText(strings.ReplaceAll(s, "`", ""))
	}
	for i, p := range parts {
		parts[i] = roffEscape(p)
		if i%2 == 1 {
			parts[i] = `\fB` + parts[i] + `\fR`
		}
	}
	return lineStart(strings.Join(parts, ""))
}

// completers name the bash functions that complete a flag's value.
var completers = map[string]string{
	"kernel": `$(ls /lib/modules 2>/dev/null)`,
	"module": `$(ls /var/lib/dkms 2>/dev/null)`,
	"root":   "dir",
}

// Completion is the bash completion for dkms-guard, from its commands and flags.
func Completion() string {
	a := newApp("", &cmdEnv{})
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	var cmds []string
	for _, c := range a.Commands {
		cmds = append(cmds, c.Name)
	}
	w("# bash completion for dkms-guard(8); generated by dkms-guard-docs, do not edit")
	w("_dkms_guard()")
	w("{")
	w("    local cur prev words cword")
	w("    _init_completion || return")
	w("")
	w("    local i cmd=")
	w("    for ((i = 1; i < cword; i++)); do")
	w(`        case ${words[i]} in`)
	w("        --root | --timeout | --jobs) ((i++)) ;;")
	w("        -*) ;;")
	w(`        *) cmd=${words[i]}; break ;;`)
	w("        esac")
	w("    done")
	w("")
	w("    case $prev in")
	for _, name := range slices.Sorted(maps.Keys(completers)) {
		gen := completers[name]
		if gen == "dir" {
			w("    --%s) _filedir -d; return ;;", name)
			continue
		}
		short := ""
		for _, c := range a.Commands {
			for _, f := range c.Flags {
				if f.Names()[0] == name && len(f.Names()) > 1 {
					short = " | -" + f.Names()[1]
				}
			}
		}
		w(`    --%s%s) COMPREPLY=($(compgen -W "%s" -- "$cur")); return ;;`, name, short, gen)
	}
	w("    --timeout | --jobs) return ;;")
	w("    esac")
	w("")
	w("    case $cmd in")
	w(`    "") COMPREPLY=($(compgen -W "%s %s --help --version" -- "$cur")) ;;`, strings.Join(cmds, " "), flagWords(a.Flags))
	for _, c := range a.Commands {
		words := strings.TrimSpace(flagWords(c.Flags) + " --help")
		if c.Name == "autoinstall" {
			words = "start stop restart force-reload status reload " + words
		}
		w(`    %s) COMPREPLY=($(compgen -W "%s" -- "$cur")) ;;`, c.Name, words)
	}
	w("    esac")
	w("} &&")
	w("    complete -F _dkms_guard dkms-guard")
	return b.String()
}

func flagWords(flags []cli.Flag) string {
	var out []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) > 1 {
				out = append(out, "--"+n)
			} else {
				out = append(out, "-"+n)
			}
		}
	}
	return strings.Join(out, " ")
}
