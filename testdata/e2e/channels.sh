#!/bin/bash
# Channels end-to-end suite: never quieter than stock. Real apt, dpkg, dkms,
# kernel images and headers, GRUB's update-grub, unattended-upgrades and
# prometheus-node-exporter in a Debian chroot (SUITE=bookworm or trixie, the
# base of run.sh plus those packages, cached too), dkms-guard from its .deb.
# Needs root, debootstrap, dpkg-scanpackages (dpkg-dev) and the mirror.
# Usage: SUITE=bookworm|trixie testdata/e2e/channels.sh DKMS-GUARD.deb
#
# vpndrv, a module the machine loads at boot (/etc/modules-load.d: the
# development kernels have no /proc/modules, so configuration is what makes
# it in use), does not build for the two newer kernels, k1 and k2. A local
# repository (Origin dkms-guard-e2e) offers e2e-kernel, a metapackage as
# linux-image-amd64 is: each version depends on a newer kernel's image and
# headers (copies of Debian's, from the mirror). The old kernel's packages
# are marked automatically installed, as a metapackage's dependencies are.
#
#   stock    no dkms-guard: unattended-upgrades (MailReport only-on-error)
#            installs k1, dkms fails it, and the administrator gets a mail;
#            GRUB keeps booting the old kernel (the harness: u-u, the
#            repository, the origin pattern and the sendmail stand-in work)
#   pinned   dkms-guard finishes k1 (dpkg --configure -a): GRUB keeps the
#            old kernel, the one with vpndrv; KEEP_KERNEL_FOR=boot-critical
#            and a rebuild take k1 anyway
#   u-u      unattended-upgrades installs k2 with dkms-guard: it succeeds,
#            GRUB stays on the old kernel, dkms-guard mails the failure, the
#            textfile metric and the login notice say so, apt autoremove
#            keeps the pinned kernel
#   fixed    vpndrv 2.0 builds everywhere: k2 boots, metric and notice gone
#
# prometheus-node-exporter runs all along as its unit would run it (user
# prometheus, the package's ARGS, 127.0.0.1 and a free port); a hand-written
# .prom file shows the scrape works before dkms-guard writes one.
set -euo pipefail

deb=${1:?usage: SUITE=bookworm|trixie channels.sh DKMS-GUARD.deb}
# The packages this suite adds to the base chroot; base_tag names the set:
# change it whenever the set changes, so that the cache is made anew.
base_extra="grub2-common grub-pc-bin unattended-upgrades prometheus-node-exporter curl python3"
base_tag=channels-r1
. "$(dirname "$0")/lib.sh"
. "$here/../grub/mkconfig.sh" # grub_stubs
base_extra="$base_extra linux-image-$old" # bookworm's headers do not pull it in
k1=$new k2=$loner                         # vpndrv 1.0 fails on both
repo=$root/srv/e2e-repo
mails=$root/var/spool/e2e-mail

exporter=
stop_exporter() {
	[ -z "$exporter" ] || { kill "$exporter" 2>/dev/null || true; wait "$exporter" 2>/dev/null || true; }
	exporter=
}
trap 'stop_exporter; cleanup' EXIT

t0=$(date +%s) tleg=$t0
leg() { # leg NAME: a new part of the suite; says how long the last one took
	local now
	now=$(date +%s)
	printf 'time: %ss\n' "$((now - tleg))"
	tleg=$now
	log "$suite: $1"
}

# ii PACKAGE...: each is installed and configured; without PACKAGE, none is
# half-installed or half-configured (removed ones may keep their conffiles).
ii() {
	local st
	st=$(chroot "$root" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@") || return 1
	if [ $# -eq 0 ]; then st=$(grep -v '^rc \|^un ' <<<"$st" || true); fi
	! grep -v '^ii ' <<<"$st"
}
# grub_boots: the kernel the generated grub.cfg's `set default=` boots.
grub_boots() {
	local cfg=$root/boot/grub/grub.cfg d
	d=$(sed -n 's/^ *set default="\([^$"]*\)"$/\1/p' "$cfg" | head -n1)
	case $d in
	0) sed -n 's|^\s*linux\s\+/boot/vmlinuz-\(\S*\)\s.*|\1|p' "$cfg" | head -n1 ;;
	*'>gnulinux-'*'-advanced-'*)
		d=${d#*>gnulinux-}
		echo "${d%-advanced-*}"
		;;
	*) echo "set default=\"$d\"" ;;
	esac
}
check_boots() { # check_boots WHAT KERNEL
	local g
	g=$(grub_boots)
	check "$1: grub.cfg boots $2 (got $g)" test "$g" = "$2"
}
# motd: what pam_motd shows at login, less base-files' uname line.
motd() {
	local u
	u=$(chroot "$root" uname -snrvm)
	chroot "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		run-parts --lsbsysinit /etc/update-motd.d | grep -vxF "$u" || true
}
# scrape: node_exporter's metrics over HTTP, as Prometheus gets them, kept
# in $work/scrape.txt.
scrape() { in_root curl -fsS "http://127.0.0.1:$port/metrics" >"$work/scrape.txt"; }
# scraped PATTERN: a scraped line matches.
scraped() { scrape && grep -q "$1" "$work/scrape.txt"; }
# missing KERNEL MODULE VERSION: the metric that says KERNEL lacks it.
missing() {
	scrape && grep '^dkms_guard_module_missing{' "$work/scrape.txt" | grep -F "kernel=\"$1\"" |
		grep -F "module=\"$2\"" | grep -F "version=\"$3\"" | grep -q '} 1$'
}
# protected KERNEL: apt's configuration keeps KERNEL's packages from
# autoremoval (APT::NeverAutoRemove, its dots and pluses escaped).
protected() {
	local pat
	pat=$(printf '%s' "$1" | sed 's/[.+]/\\&/g')
	chroot "$root" apt-config dump | grep '^APT::NeverAutoRemove' | grep -qF -- "$pat"
}
# none_missing: the scrape works and no metric says a module is missing.
none_missing() { scrape && ! grep -q '^dkms_guard_module_missing{' "$work/scrape.txt"; }
# mails_with TEXT...: how many kept mails contain every TEXT.
mails_with() {
	local f n=0 t
	for f in "$mails"/*; do
		[ -f "$f" ] || continue
		for t; do grep -qF -- "$t" "$f" || continue 2; done
		n=$((n + 1))
	done
	echo "$n"
}
# publish DEB...: the local repository holds DEBs too, indexed anew.
publish() {
	cp "$@" "$repo/"
	(cd "$repo" && dpkg-scanpackages -m . /dev/null >Packages 2>/dev/null)
	{
		printf 'Origin: dkms-guard-e2e\nLabel: dkms-guard-e2e\nSuite: e2e\nCodename: e2e\n'
		printf 'Date: %s\nSHA256:\n' "$(LC_ALL=C date -u -R)"
		printf ' %s %s Packages\n' "$(sha256sum <"$repo/Packages" | cut -d' ' -f1)" "$(stat -c %s "$repo/Packages")"
	} >"$repo/Release"
	in_root apt-get update -q >>"$work/apt.log" 2>&1
}
# meta VERSION KERNEL...: e2e-kernel VERSION, depending on each KERNEL.
meta() {
	local v=$1 d=$work/pkg/e2e-kernel-$1 deps=
	shift
	for k; do deps="$deps${deps:+, }linux-image-$k, linux-headers-$k"; done
	mkdir -p "$d/DEBIAN"
	printf 'Package: e2e-kernel\nVersion: %s\nArchitecture: all\nMaintainer: dkms-guard e2e <e2e@invalid>\n%sDescription: the kernel, as linux-image-amd64\n' \
		"$v" "${deps:+Depends: $deps
}" >"$d/DEBIAN/control"
	dpkg-deb --root-owner-group -b "$d" "$work/debs/e2e-kernel_${v}_all.deb" >/dev/null
	publish "$work/debs/e2e-kernel_${v}_all.deb"
}
uu() { # uu LOG: one unattended-upgrades run, as its timer starts it
	run_in "$1" unattended-upgrade -d
	cp "$root/var/log/unattended-upgrades/unattended-upgrades-dpkg.log" "$work/$1.dpkg" 2>/dev/null || true
}

leg "the base chroot, with ${base_extra// /, }"
chroot_up
# Time: no fsync per file (kernel images are thousands), no recommends (a
# kernel image's would add apparmor, whose trigger rebuilds every
# initramfs), small initramfs images (MODULES=list: vpndrv is not in them,
# so it is in use, not boot-critical).
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/90e2e-unsafe-io"
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90e2e-no-recommends"
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/90e2e-small"

# GRUB as on a BIOS machine: only what probes the hardware (grub-probe,
# grub-mkrelpath) is a stub: an ext4 / on /dev/sda1, /boot on it.
mkdir -p "$work/stubs" "$root/boot/grub"
grub_stubs "$work/stubs"
for p in /usr/sbin/grub-probe /usr/bin/grub-mkrelpath; do
	in_root dpkg-divert --local --rename --add "$p" >/dev/null
	install -m 0755 "$work/stubs/${p##*/}" "$root$p"
done
printf '%s\n' GRUB_DEFAULT=0 GRUB_TIMEOUT=5 GRUB_DISTRIBUTOR=Debian 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' \
	'GRUB_CMDLINE_LINUX=""' >"$root/etc/default/grub"
run_in update-grub.log update-grub
check "update-grub makes grub.cfg (exit $rc)" test "$rc" -eq 0
check_boots "before any upgrade" "$old"

# vpndrv 1.0, built for the old kernel, loaded at boot.
mkdeb vpndrv 1.0
mkdeb vpndrv 2.0 vpndrv2
mkdir -p "$root/etc/modules-load.d"
echo vpndrv >"$root/etc/modules-load.d/vpndrv.conf"
run_in modules.log apt-get install -y -q /tmp/vpndrv-dkms_1.0_all.deb
check "vpndrv/1.0 built for $old (exit $rc)" sh -c "chroot '$root' dkms status vpndrv/1.0 -k $old | grep -q installed"
in_root apt-mark auto "linux-image-$old" "linux-headers-$old" >/dev/null

# unattended-upgrades takes the local repository only; its mail goes to a
# sendmail that keeps each message.
mkdir -p "$repo" "$mails"
echo 'deb [trusted=yes] file:/srv/e2e-repo ./' >"$root/etc/apt/sources.list.d/e2e.list"
# The kernels' packages are in both repositories: the local copy wins.
printf 'Package: *\nPin: release o=dkms-guard-e2e\nPin-Priority: 600\n' >"$root/etc/apt/preferences.d/e2e"
cat >"$root/etc/apt/apt.conf.d/51dkms-guard-e2e" <<'CONF'
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern { "origin=dkms-guard-e2e"; };
Unattended-Upgrade::MailReport "only-on-error";
Unattended-Upgrade::Mail "root";
CONF
cat >"$root/usr/sbin/sendmail" <<'MAIL'
#!/bin/sh
# e2e stand-in: keeps each message, one file each
cat >"/var/spool/e2e-mail/$(date +%s.%N).$$"
MAIL
chmod 0755 "$root/usr/sbin/sendmail"
in_root apt-get clean
run_in download.log apt-get install -y -q --download-only "linux-image-$k1" "linux-headers-$k1" \
	"linux-image-$k2" "linux-headers-$k2"
[ "$rc" -eq 0 ] || { tail -n 30 "$work/download.log"; exit 1; }
publish "$root"/var/cache/apt/archives/*.deb
meta 1
run_in meta1.log apt-get install -y -q e2e-kernel
check "e2e-kernel 1 installed from the local repository (exit $rc)" test "$rc" -eq 0

# prometheus-node-exporter as its unit starts it: user prometheus, the
# package's ARGS (EnvironmentFile), and here 127.0.0.1 and a free port.
leg "prometheus-node-exporter"
# As on a machine, /sys is there (trixie's node_exporter 1.9 panics in its
# cpu collector without it).
mount -t sysfs -o ro sysfs "$root/sys"
port=$(in_root python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chroot "$root" env -i PATH="$chroot_path" sh -c '. /etc/default/prometheus-node-exporter
	exec setpriv --reuid=prometheus --regid=prometheus --init-groups /usr/bin/prometheus-node-exporter $ARGS \
		--web.listen-address=127.0.0.1:'"$port" >"$work/node-exporter.log" 2>&1 &
exporter=$!
for _ in $(seq 100); do scrape >/dev/null 2>&1 && break || sleep 0.2; done
check "node-exporter runs as prometheus" sh -c "test \"\$(awk '/^Uid:/ {print \$2}' /proc/$exporter/status)\" = \"\$(chroot '$root' id -u prometheus)\""
tdir=$root/var/lib/prometheus/node-exporter
printf '# HELP e2e_handwritten a hand-written metric\n# TYPE e2e_handwritten gauge\ne2e_handwritten 1\n' >"$tdir/e2e.prom"
chmod 0644 "$tdir/e2e.prom"
check "node-exporter serves a hand-written textfile metric" scraped '^e2e_handwritten 1$'
rm -f "$tdir/e2e.prom"
check "motd: base-files' scripts print only uname" test -z "$(motd)"

leg "stock dkms: unattended-upgrades installs $k1"
meta 2 "$k1"
uu stock-uu.log
check "stock: unattended-upgrades fails (exit $rc)" test "$rc" -ne 0
check "stock: the dkms hook is what failed" grep -q "postinst.d/dkms exited with return code" "$work/stock-uu.log.dpkg"
check "stock: a kernel package left half-configured" \
	sh -c "chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev}\n' linux-headers-$k1 linux-image-$k1 | grep -q '^iF'"
check "stock: the administrator gets one mail" test "$(mails_with "unattended-upgrades" "$k1")" -eq 1
check_boots "stock" "$old"
rm -f "$mails"/*

leg "dkms-guard installed; dpkg --configure -a finishes $k1"
cp "$deb" "$root/tmp/dkms-guard.deb"
run_in install.log apt-get install -y -q /tmp/dkms-guard.deb
check "apt installs dkms-guard (exit $rc)" test "$rc" -eq 0
run_in configure.log dpkg --configure -a
check "dpkg --configure -a exits 0 (got $rc)" test "$rc" -eq 0
check "every package ii" ii
check "vpndrv's failure is said as in use" grep -q "^W: dkms-guard: $k1 lacks in-use vpndrv/1.0 (loaded at boot by /etc/modules-load.d/vpndrv.conf)" "$work/install.log" "$work/configure.log"
check_boots "vpndrv in use, missing on $k1" "$old"
cp "$root/etc/default/dkms-guard" "$work/default"
echo 'KEEP_KERNEL_FOR="boot-critical"' >>"$root/etc/default/dkms-guard"
run_in keep.log dkms-guard rebuild
check_boots "KEEP_KERNEL_FOR=boot-critical" "$k1"
cp "$work/default" "$root/etc/default/dkms-guard"
# Back to in-use: the next decision (here rebuild's) pins again, and keeps
# the pinned kernel from autoremoval before unattended-upgrades starts (it
# reads apt's configuration once, at its start).
run_in keep-again.log dkms-guard rebuild
check_boots "KEEP_KERNEL_FOR=in-use again" "$old"
check "the pinned $old is kept from autoremoval (apt-config)" protected "$old"

leg "dkms-guard: unattended-upgrades installs $k2"
meta 3 "$k2"
uu guard-uu.log
check "u-u: unattended-upgrades succeeds (exit $rc)" test "$rc" -eq 0
check "u-u: every package ii" ii
check "u-u: $k2 installed" ii "linux-image-$k2" "linux-headers-$k2"
check "u-u: its kernel autoremoval keeps the pinned $old" ii "linux-image-$old" "linux-headers-$old"
check "u-u: its dpkg log carries dkms-guard's line" grep -q "^W: dkms-guard: vpndrv/1.0: build failed for $k2" "$work/guard-uu.log.dpkg"
check_boots "u-u, vpndrv missing on $k1 and $k2" "$old"
check "u-u: the administrator gets dkms-guard's mail naming vpndrv/1.0" test "$(mails_with dkms-guard vpndrv/1.0 "$k2")" -ge 1
check "metrics: vpndrv/1.0 missing on $k2" missing "$k2" vpndrv 1.0
cp "$work/scrape.txt" "$work/scrape-failed.txt"
motd >"$work/motd-failed.txt"
check "motd: the notice, at most four lines" sh -c "grep -q dkms-guard '$work/motd-failed.txt' && grep -q vpndrv '$work/motd-failed.txt' && test \$(wc -l <'$work/motd-failed.txt') -le 4"

leg "apt autoremove"
run_in autoremove.log apt-get autoremove -y -q
check "autoremove exits 0 (got $rc)" test "$rc" -eq 0
check "autoremove keeps the pinned $old" ii "linux-image-$old" "linux-headers-$old"
check_boots "after autoremove" "$old"

leg "the fix: vpndrv 2.0"
run_in fix.log apt-get install -y -q /tmp/vpndrv-dkms_2.0_all.deb
check "fix: apt exits 0 (got $rc)" test "$rc" -eq 0
for k in "$k1" "$k2"; do
	check "fix: vpndrv/2.0 built for $k" sh -c "chroot '$root' dkms status vpndrv/2.0 -k $k | grep -q installed"
done
check_boots "fixed" "$k2"
check "fixed: node-exporter reads the textfile directory" scraped '^node_textfile_scrape_error 0$'
check "fixed: no metric says a module is missing" none_missing
motd >"$work/motd-fixed.txt"
check "fixed: motd says nothing" test ! -s "$work/motd-fixed.txt"
stop_exporter
leg "done"
printf 'channels-%s: %ss in all\n' "$suite" "$(($(date +%s) - t0))"

summary "channels-$suite"
