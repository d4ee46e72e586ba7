#!/bin/bash
# End-to-end suite: real apt, dpkg and dkms in a Debian chroot (SUITE=bookworm:
# Debian 12, dkms 3.0.10; SUITE=trixie: Debian 13, dkms 3.2.2, where the
# headers pull in the kernel image, whose postinst runs the dkms hook), real
# kernel headers and images, real module builds, dkms-guard installed from
# its .deb. Needs root, debootstrap and the Debian mirror.
# Usage: SUITE=bookworm|trixie testdata/e2e/run.sh DKMS-GUARD.deb
#
# It reproduces the failure dkms-guard exists for (a kernel upgrade left
# half-configured, apt exiting 100), then with dkms-guard checks: dpkg
# --configure -a finishes it, a foreign module's failure is one W: line, an
# unsupported module is skipped, a module whose BUILD_DEPENDS failed is
# skipped, a module added by hand is built; an upgraded module package is
# built for every kernel with headers and its failure is an E: (the old
# version's build kept where the new one failed; apt remove leaves nothing
# of it); dkms-guard upgrades inside an apt run that installs a kernel; dkms
# reinstalled keeps the diversion working; a kernel reinstalled while a
# module's rebuild fails keeps that module (trixie); a module package
# upgraded to a version that builds on no kernel keeps the old build on
# both kernels until a fixed version replaces it, and nothing of the old
# version is left after; two kernels in one apt run; a kernel installed with
# dpkg -i alone; a removed dkms-guard leaves apt working with stock dkms
# behaviour back; purge leaves nothing of dkms-guard's behind.
set -euo pipefail

deb=${1:?usage: SUITE=bookworm|trixie run.sh DKMS-GUARD.deb}
. "$(dirname "$0")/lib.sh"

# ii: every named package is installed and configured.
ii() { ! chroot "$root" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" | grep -v '^ii '; }
# built MODULE/VERSION KERNEL: dkms has it installed for the kernel.
built() { chroot "$root" dkms status "$1" -k "$2" 2>/dev/null | grep -q 'installed'; }
unbuilt() { ! built "$@"; }
# lines PATTERN LOG: how many lines of LOG match.
lines() { grep -c "$1" "$work/$2" || true; }
# ulines PATTERN LOG: distinct matching lines (outside apt, on trixie, the
# headers' and the image's hooks both run and both say so).
ulines() { grep "$1" "$work/$2" | sort -u | wc -l; }
# modver MODULE KERNEL: the version modinfo reads from MODULE as installed
# for KERNEL (found through its modules.dep: depmod ran).
modver() { chroot "$root" modinfo -k "$2" -F version "$1" 2>/dev/null || true; }
# keptjson: kept.json on one line, without blanks (empty if none).
keptjson() { tr -d ' \t\n' 2>/dev/null <"$root/var/lib/dkms-guard/kept.json" || true; }
# kept MODULE: how many kept builds of MODULE kept.json lists.
kept() { keptjson | grep -o "\"module\":\"$1\"" | wc -l; }
# unlisted: the archives in the kept directory kept.json does not name.
unlisted() {
	local f
	for f in "$root"/var/lib/dkms-guard/kept/*; do
		[ -e "$f" ] || continue
		keptjson | grep -qF "\"archive\":\"${f##*/}\"" || echo "${f#"$root"}"
	done
}
# gone MODULE/VERSION: nothing of it is left: not in dkms's tree, no
# source, no kept build of it, no archive kept.json does not name.
gone() {
	test ! -e "$root/var/lib/dkms/${1%/*}/${1#*/}" && test ! -e "$root/usr/src/${1%/*}-${1#*/}" &&
		! keptjson | grep -qF "\"module\":\"${1%/*}\",\"version\":\"${1#*/}\"" &&
		test -z "$(unlisted)"
}

# 1. A base chroot with dkms and the old kernel, cached between runs.
log "$suite: the base chroot"
chroot_up
check "$suite: dkms $dkms_version" sh -c "chroot '$root' dkms --version | grep -qx 'dkms-$dkms_version'"

# 2. Module packages: hello builds everywhere, oldvendor and wifi 2.0 fail on
#    every kernel but the old one, exclmod is for 5.x kernels only (dkms
#    exit 77), dependent needs oldvendor (BUILD_DEPENDS), handmade is added
#    by hand with dkms add (no package: a foreign module).
mkdeb hello 1.0
mkdeb hello 2.0
mkdeb oldvendor 1.0
mkdeb exclmod 1.0
mkdeb wifi 1.0
mkdeb wifi 2.0 wifi2
mkdeb dependent 1.0
log "installing the module packages for $old, and handmade by hand"
in_root apt-get install -y -q /tmp/hello-dkms_1.0_all.deb /tmp/oldvendor-dkms_1.0_all.deb /tmp/exclmod-dkms_1.0_all.deb \
	/tmp/wifi-dkms_1.0_all.deb >"$work/modules.log" 2>&1 || { tail -n 40 "$work/modules.log"; exit 1; }
# After oldvendor: dkms 3.2 refuses to build a module before its BUILD_DEPENDS (exit 13).
in_root apt-get install -y -q /tmp/dependent-dkms_1.0_all.deb >>"$work/modules.log" 2>&1 || { tail -n 40 "$work/modules.log"; exit 1; }
cp -r "$here/modules/handmade" "$root/usr/src/handmade-1.0"
in_root dkms add handmade/1.0 >>"$work/modules.log" 2>&1
in_root dkms install handmade/1.0 -k "$old" >>"$work/modules.log" 2>&1
for m in hello/1.0 oldvendor/1.0 dependent/1.0 handmade/1.0; do
	check "$m built for $old" built "$m" "$old"
done

# 3. Without dkms-guard: the new kernel fails to configure and apt exits
#    100. dkms before 3.0 (upstream's 2.8.7, Ubuntu 22.04's base) runs each
#    install in a subshell and exits 0 whatever failed: there apt succeeds
#    and the new kernel silently lacks oldvendor.
case $dkms_version in
2.*) stock_fails= ;;
*) stock_fails=1 ;;
esac
log "stock dkms: apt-get install linux-headers-$new"
run_in stock.log apt-get install -y -q "linux-headers-$new"
if [ -n "$stock_fails" ]; then
	check "stock: apt fails (exit $rc)" test "$rc" -eq 100
	check "stock: run-parts reports the dkms hook" grep -q "postinst.d/dkms exited with return code" "$work/stock.log"
	check "stock: a kernel package left half-configured" \
		sh -c "chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev}\n' linux-headers-$new linux-image-$new 2>/dev/null | grep -q '^iF'"
else
	check "stock (dkms $dkms_version): apt succeeds (exit $rc)" test "$rc" -eq 0
	check "stock (dkms $dkms_version): $new lacks oldvendor/1.0" unbuilt oldvendor/1.0 "$new"
fi

# 4. dkms-guard from its .deb (a previous build: step 7 upgrades it), then
#    dpkg --configure -a finishes what stock dkms left half-configured (or,
#    under dkms 2.x, the headers' hook runs again).
log "apt-get install ./dkms-guard (previous build); dpkg --configure -a"
# Every file of dkms-guard's, by name, before it is installed: purge must
# leave the same (step 14).
owned() { (cd "$root" && find . -xdev -path ./proc -prune -o -path ./tmp -prune -o -name '*dkms-guard*' -print | sort); }
owned >"$work/files-before"
prev=$work/dkms-guard-prev.deb
rm -rf "$work/prev" && dpkg-deb -R "$deb" "$work/prev"
version=$(sed -n 's/^Version: //p' "$work/prev/DEBIAN/control")
sed -i "s/^Version: .*/Version: $version~e2e.prev/" "$work/prev/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/prev" "$prev" >/dev/null
cp "$prev" "$root/tmp/dkms-guard-prev.deb"
cp "$deb" "$root/tmp/dkms-guard.deb"
run_in install.log apt-get install -y -q /tmp/dkms-guard-prev.deb
check "apt installs the .deb (exit $rc)" test "$rc" -eq 0
check "autoinstaller diverted" sh -c "chroot '$root' dpkg-divert --list /usr/lib/dkms/dkms_autoinstaller | grep -q 'by dkms-guard'"
check "dkms's autoinstaller kept as .distrib" grep -q 'dkms_autoinstaller' "$root/usr/lib/dkms/dkms_autoinstaller.distrib"
check "the shim runs dkms-guard" grep -q 'exec "/usr/sbin/dkms-guard" autoinstall' "$root/usr/lib/dkms/dkms_autoinstaller"
check "man page and bash completion installed" test -s "$root/usr/share/man/man8/dkms-guard.8.gz" -a -s "$root/usr/share/bash-completion/completions/dkms-guard"
if [ -n "$stock_fails" ]; then
	run_in configure.log dpkg --configure -a
	check "dpkg --configure -a exits 0 (got $rc)" test "$rc" -eq 0
else
	# Nothing is left to configure: the headers' hook, run again as their
	# postinst runs it, is what a kernel installed from now on goes through.
	run_in configure.log /etc/kernel/header_postinst.d/dkms "$new"
	check "the headers' dkms hook exits 0 (got $rc)" test "$rc" -eq 0
fi
cat "$work/install.log" "$work/configure.log" >"$work/guard.log" # apt may have configured the kernel already
check "every package ii" ii
if [ -n "$stock_fails" ]; then
	check "one W: line for oldvendor, one for dependent" sh -c "
		test $(ulines '^W: dkms-guard' guard.log) -eq 2 &&
		grep -q '^W: dkms-guard: oldvendor/1.0: build failed for $new' '$work/guard.log' &&
		grep -q '^W: dkms-guard: dependent/1.0: not built for $new: its BUILD_DEPENDS oldvendor was not installed' '$work/guard.log'"
else
	# dkms 2.x's autoinstall goes on to a module whose BUILD_DEPENDS failed:
	# stock installed dependent, which builds without oldvendor.
	check "one W: line, for oldvendor" sh -c "
		test $(ulines '^W: dkms-guard' guard.log) -eq 1 &&
		grep -q '^W: dkms-guard: oldvendor/1.0: build failed for $new' '$work/guard.log'"
	check "dependent/1.0 installed for $new by stock dkms $dkms_version" built dependent/1.0 "$new"
fi
check "no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/guard.log'"
# The README's "What you see" is this run's output: each of its lines.
if [ "$suite" = bookworm ] && [ -z "${DKMS_GUARD_E2E_DKMS:-}" ]; then
	sed -n '/^## What you see/,/^## /p' "$here/../../README.md" | sed -n '/^```$/,/^```$/p' | grep -v '^```$' >"$work/readme-example"
	tr -d '\r' <"$work/guard.log" >"$work/guard.txt" # dpkg's output under apt's pty ends lines with CR LF
	check "the README's example: its $(wc -l <"$work/readme-example") lines, each in this run's output" \
		sh -c "test -s '$work/readme-example' && grep -Fxvf '$work/guard.txt' '$work/readme-example' | { ! grep .; }"
fi
check "exclmod skipped as unsupported" grep -q "exclmod/1.0: not built for $new, unsupported" "$work/guard.log"
for m in hello/1.0 handmade/1.0; do
	check "$m built for $new" built "$m" "$new"
done
check "oldvendor still installed for $old" built oldvendor/1.0 "$old"
check "notice file written" grep -q "oldvendor/1.0" "$root/var/lib/dkms-guard.notice"
check "build log kept" grep -q "oldvendor does not support" "$root/var/log/dkms-guard/$new/oldvendor-1.0.log"
run_in gstatus dkms-guard status
check "dkms-guard status exits 1 (got $rc)" test "$rc" -eq 1

# 5. An upgraded module package: its new version ends up on both kernels.
log "upgrade hello-dkms 1.0 -> 2.0"
run_in upgrade.log apt-get install -y -q /tmp/hello-dkms_2.0_all.deb
check "upgrade: apt exits 0 (got $rc)" test "$rc" -eq 0
for k in "$old" "$new"; do
	check "hello 2.0 built for $k" built hello/2.0 "$k"
done
check "upgrade: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/upgrade.log'"

# 6. An upgraded module package whose new version fails on the new kernel:
#    the package's own postinst fails (stock dkms, a real failure), and
#    post-invoke reports it as an error after dpkg, without building it
#    twice, and puts back 1.0's build it kept for that kernel. Removing the
#    package with apt (the administrator's choice) leaves nothing of it.
log "upgrade wifi-dkms 1.0 -> 2.0, which does not build for $new"
run_in wifi.log apt-get install -y -q /tmp/wifi-dkms_2.0_all.deb
check "wifi: the package's own failure still fails apt (got $rc)" test "$rc" -eq 100
check "wifi: E: line after dpkg" grep -q "^E: dkms-guard: wifi/2.0: build failed for $new" "$work/wifi.log"
check "wifi: summary marks it [E]" grep -q "wifi/2.0 .*FAILED.*\[E\]" "$work/wifi.log"
check "wifi: built for $old" built wifi/2.0 "$old"
check "wifi: 1.0 kept for $new" built wifi/1.0 "$new"
run_in wifi-purge.log apt-get purge -y -q wifi-dkms
check "wifi: purged (exit $rc)" test "$rc" -eq 0
check "wifi: nothing of wifi/1.0 or wifi/2.0 is left" sh -c "! chroot '$root' dkms status wifi | grep -q . && ! ls -d '$root'/usr/src/wifi-* 2>/dev/null"
check "wifi: nothing kept" test "$(kept wifi)" -eq 0

# 7. dkms-guard upgraded in the apt run that installs a kernel image: the
#    previous build's pre-invoke and apt-plan, the new one's kernel hooks and
#    post-invoke share the state. /etc/kernel/postinst.d runs dkms (our
#    autoinstall), then dkms-guard's report, then initramfs-tools.
log "apt-get install linux-image-$new ./dkms-guard (upgrade)"
reinstall=
[ "$suite" = trixie ] && reinstall=--reinstall # the headers pulled the image in
run_in image.log apt-get install -y -q $reinstall "linux-image-$new" /tmp/dkms-guard.deb
check "image+upgrade: apt exits 0 (got $rc)" test "$rc" -eq 0
check "image+upgrade: dkms-guard $version installed" sh -c "chroot '$root' dpkg-query -W -f='\${Version} \${db:Status-Abbrev}' dkms-guard | grep -q '^$version ii'"
check "image+upgrade: W: lines for oldvendor and dependent only" sh -c "test $(lines '^W: dkms-guard' image.log) -le 2 && ! grep '^W: dkms-guard' '$work/image.log' | grep -v 'oldvendor\|dependent'"
check "image+upgrade: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/image.log'"
# Under dkms 2.x stock installed dependent for $new (step 4).
set_new="handmade/1.0, hello/2.0"
[ -n "$stock_fails" ] || set_new="dependent/1.0, $set_new"
check "image: module set reported before the initramfs is built" sh -c "
	r=\$(grep -n 'kernel $new gets its initramfs with DKMS modules: $set_new; without: ' '$work/image.log' | head -n1 | cut -d: -f1)
	i=\$(grep -n 'update-initramfs: Generating /boot/initrd.img-$new' '$work/image.log' | head -n1 | cut -d: -f1)
	[ -n \"\$r\" ] && [ -n \"\$i\" ] && [ \"\$r\" -lt \"\$i\" ]"

# 8. dkms reinstalled (or upgraded): dpkg puts its autoinstaller at the
#    diverted name, our shim stays, and the next kernels go through it.
log "apt-get install --reinstall dkms"
run_in dkms-reinstall.log apt-get install -y -q --reinstall dkms
dkms_over # the dkms under test, if it is not the release's
check "dkms reinstalled (exit $rc)" test "$rc" -eq 0
check "dkms reinstalled: still diverted" sh -c "chroot '$root' dpkg-divert --list /usr/lib/dkms/dkms_autoinstaller | grep -q 'by dkms-guard'"
check "dkms reinstalled: the shim is still in place" grep -q 'exec "/usr/sbin/dkms-guard" autoinstall' "$root/usr/lib/dkms/dkms_autoinstaller"
check "dkms reinstalled: dkms's file went to .distrib" grep -q 'dkms_autoinstaller' "$root/usr/lib/dkms/dkms_autoinstaller.distrib"

# 9. A kernel's image reinstalled at the same version, where dkms's own
#    preinst.d hook (dkms 3.1.6 and later: trixie) unbuilds every module of
#    that kernel, while one module's rebuild now fails (markermod's Makefile
#    fails once /etc/fail-markermod exists): dkms-guard kept its build
#    before and puts it back. Then markermod's package is purged with apt:
#    nothing of it is kept.
if [ -e "$root/etc/kernel/preinst.d/dkms" ]; then
	mkdeb markermod 1.0
	log "markermod-dkms 1.0; apt-get install --reinstall linux-image-$new while markermod fails to build"
	run_in marker.log apt-get install -y -q /tmp/markermod-dkms_1.0_all.deb
	check "reinstall: markermod 1.0 installed (exit $rc)" test "$rc" -eq 0
	check "reinstall: markermod/1.0 built for $new" built markermod/1.0 "$new"
	touch "$root/etc/fail-markermod"
	run_in reinstall.log apt-get install -y -q --reinstall "linux-image-$new"
	rm "$root/etc/fail-markermod"
	check "reinstall: apt exits 0 (got $rc)" test "$rc" -eq 0
	check "reinstall: markermod's rebuild for $new failed" \
		grep -q 'fail-markermod exists' "$root/var/log/dkms-guard/$new/markermod-1.0.log"
	check "reinstall: markermod/1.0 still installed for $new" built markermod/1.0 "$new"
	# A W: line: the rebuild's own failure was one (a package's module that
	# fails for a new kernel does not stop it).
	check "reinstall: one W: line says markermod's build from before was put back" \
		test "$(ulines '^W: dkms-guard: .*markermod.*put back' reinstall.log)" -eq 1
	check "reinstall: modinfo finds markermod 1.0 for $new (got '$(modver markermod "$new")')" \
		test "$(modver markermod "$new")" = 1.0
	run_in marker-purge.log apt-get purge -y -q markermod-dkms
	check "reinstall: markermod-dkms purged (exit $rc)" test "$rc" -eq 0
	check "reinstall: nothing of markermod/1.0 is left" gone markermod/1.0
else
	log "no /etc/kernel/preinst.d/dkms: dkms $dkms_version leaves the builds alone when a kernel is reinstalled"
fi

# 10. A module package upgraded to a version that builds on no kernel
#     (keepmod 2.0): its own postinst fails (a real failure: apt exits 100),
#     but dkms-guard kept 1.0's builds before dpkg ran and puts them back on
#     both kernels, with one E: line; the fixed 3.0 then replaces them and
#     nothing of 1.0 is left. Then 4.0 fails again (3.0 is kept), and an
#     administrator's dkms remove of 3.0 and the removal of a kernel leave
#     nothing of 3.0.
mkdeb keepmod 1.0
mkdeb keepmod 2.0 keepmod-fails
mkdeb keepmod 3.0
mkdeb keepmod 4.0 keepmod-fails
log "keepmod-dkms 1.0, then 2.0, which builds on no kernel"
run_in keep1.log apt-get install -y -q /tmp/keepmod-dkms_1.0_all.deb
check "keep: keepmod 1.0 installed (exit $rc)" test "$rc" -eq 0
run_in keep2.log apt-get install -y -q /tmp/keepmod-dkms_2.0_all.deb
check "keep: 2.0's own postinst still fails apt (got $rc)" test "$rc" -eq 100
for k in "$old" "$new"; do
	check "keep: 2.0 failed to build for $k" \
		grep -q 'keepmod 2.0 does not build on any kernel' "$root/var/log/dkms-guard/$k/keepmod-2.0.log"
	check "keep: keepmod/1.0 installed for $k" built keepmod/1.0 "$k"
	check "keep: modinfo finds keepmod 1.0 for $k (got '$(modver keepmod "$k")')" test "$(modver keepmod "$k")" = 1.0
done
check "keep: one E: line says 1.0 was kept" test "$(ulines '^E: dkms-guard: .*kept' keep2.log)" -eq 1
check "keep: it names keepmod 1.0 and 2.0 and both kernels" \
	sh -c "grep '^E: dkms-guard: .*kept' '$work/keep2.log' | grep 'keepmod' | grep '1\.0' | grep '2\.0' | grep -F '$old' | grep -qF '$new'"
check "keep: kept.json lists keepmod for both kernels" test "$(kept keepmod)" -eq 2
log "keepmod-dkms 3.0, which builds"
run_in keep3.log apt-get install -y -q /tmp/keepmod-dkms_3.0_all.deb
check "keep: 3.0 installed (exit $rc)" test "$rc" -eq 0
for k in "$old" "$new"; do
	check "keep: keepmod/3.0 installed for $k" built keepmod/3.0 "$k"
	check "keep: modinfo finds keepmod 3.0 for $k (got '$(modver keepmod "$k")')" test "$(modver keepmod "$k")" = 3.0
done
check "keep: nothing of keepmod/1.0 is left" gone keepmod/1.0
check "keep: kept.json lists no keepmod build" test "$(kept keepmod)" -eq 0
check "keep: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/keep3.log'"
log "keepmod-dkms 4.0, which builds on no kernel; dkms remove keepmod/3.0 --all; apt-get purge linux-image-$new"
run_in keep4.log apt-get install -y -q /tmp/keepmod-dkms_4.0_all.deb
check "keep: 4.0's own postinst fails apt (got $rc)" test "$rc" -eq 100
for k in "$old" "$new"; do
	check "keep: keepmod/3.0 put back for $k" built keepmod/3.0 "$k"
done
run_in keep-remove.log dkms remove -m keepmod -v 3.0 --all
check "keep: dkms remove of the kept 3.0 exits 0 (got $rc)" test "$rc" -eq 0
# apt configures the half-configured keepmod-dkms 4.0 again: its postinst
# fails again (exit 100, and apt stops before purging), the kernel is
# removed all the same.
run_in keep-kernel.log apt-get purge -y -q "linux-image-$new" "linux-headers-$new"
check "keep: $new removed, keepmod-dkms failed again (exit $rc)" sh -c "
	! chroot '$root' dpkg-query -W -f='\${db:Status-Status}\n' linux-image-$new linux-headers-$new 2>/dev/null |
		grep -vqx 'config-files\|not-installed' &&
	test \"\$(tr -d '\r' <'$work/keep-kernel.log' | grep -A1 '^Errors were encountered' | tail -n1)\" = ' keepmod-dkms'"
check "keep: keepmod/3.0 not put back for $old" sh -c "! chroot '$root' dkms status keepmod/3.0 -k '$old' 2>/dev/null | grep -q ."
check "keep: nothing of keepmod/3.0 is left" gone keepmod/3.0
check "keep: kept.json lists no keepmod build" test "$(kept keepmod)" -eq 0
# What apt left: keepmod-dkms 4.0 half-configured, the image's conffiles.
in_root dpkg --purge keepmod-dkms "linux-image-$new" >>"$work/keep-kernel.log" 2>&1 || true

# 11. Two kernels in one apt run.
log "apt-get install linux-headers-$pair1 linux-headers-$pair2"
run_in pair.log apt-get install -y -q "linux-headers-$pair1" "linux-headers-$pair2"
check "two kernels: apt exits 0 (got $rc)" test "$rc" -eq 0
check "two kernels: every package ii" ii
for k in "$pair1" "$pair2"; do
	check "two kernels: hello and handmade built for $k" sh -c "chroot '$root' dkms status hello/2.0 -k $k | grep -q installed && chroot '$root' dkms status handmade/1.0 -k $k | grep -q installed"
	check "two kernels: oldvendor is a W: line for $k" grep -q "^W: dkms-guard: oldvendor/1.0: build failed for $k" "$work/pair.log"
done
check "two kernels: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/pair.log'"

# 12. A kernel installed with dpkg -i alone: no apt hook runs, only the
#     diverted autoinstaller; it reports by itself.
log "dpkg -i linux-*-$loner"
run_in loner-download.log apt-get install -y -q --download-only "linux-headers-$loner"
abi=${loner%-amd64}
run_in loner.log sh -c "dpkg -i /var/cache/apt/archives/linux-*-${abi}[-_]*.deb"
check "dpkg -i: exits 0 (got $rc)" test "$rc" -eq 0
check "dpkg -i: every package ii" ii
check "dpkg -i: hello built for $loner" built hello/2.0 "$loner"
check "dpkg -i: the autoinstall reports by itself" grep -q "^N: dkms-guard: DKMS modules for kernel $loner:" "$work/loner.log"
check "dpkg -i: oldvendor is a W: line" grep -q "^W: dkms-guard: oldvendor/1.0: build failed for $loner" "$work/loner.log"

# 13. Removed (not purged): apt.conf.d/80dkms-guard is a conffile and stays,
#     disabled; apt works, and kernel installs behave as with stock dkms.
log "apt-get remove dkms-guard"
run_in remove.log apt-get remove -y -q dkms-guard
check "remove: apt exits 0 (got $rc)" test "$rc" -eq 0
check "remove: the apt hook is disabled" sh -c "test -e '$root/etc/apt/apt.conf.d/80dkms-guard.disabled' && test ! -e '$root/etc/apt/apt.conf.d/80dkms-guard'"
check "remove: diversion removed" sh -c "! chroot '$root' dpkg-divert --list /usr/lib/dkms/dkms_autoinstaller | grep -q dkms-guard"
check "remove: dkms's autoinstaller is back" sh -c "! grep -q dkms-guard '$root/usr/lib/dkms/dkms_autoinstaller'"
run_in unrelated.log apt-get install -y -q less
check "remove: an unrelated apt install exits 0 (got $rc)" test "$rc" -eq 0
check "remove: no dkms-guard line in it" sh -c "! grep -q 'dkms-guard' '$work/unrelated.log'"
# Should the hook be enabled again with the binary gone (an administrator's
# copy of the conffile), its Pre-Install-Pkgs line still lets apt go on.
mv "$root/etc/apt/apt.conf.d/80dkms-guard.disabled" "$root/etc/apt/apt.conf.d/80dkms-guard"
run_in orphan-hook.log apt-get install -y -q --reinstall less
check "remove: an enabled hook without its binary does not fail apt (exit $rc)" test "$rc" -eq 0
mv "$root/etc/apt/apt.conf.d/80dkms-guard" "$root/etc/apt/apt.conf.d/80dkms-guard.disabled"
run_in stock-again.log apt-get install -y -q --reinstall "linux-headers-$loner"
if [ -n "$stock_fails" ]; then
	check "remove: a kernel install fails as with stock dkms (exit $rc)" test "$rc" -eq 100
	check "remove: the dkms hook is what failed" grep -q "postinst.d/dkms exited with return code" "$work/stock-again.log"
else
	check "remove: a kernel install succeeds as with stock dkms $dkms_version (exit $rc)" test "$rc" -eq 0
	check "remove: stock dkms $dkms_version's autoinstaller ran" grep -q "running auto installation service for kernel $loner" "$work/stock-again.log"
	check "remove: oldvendor is missing for $loner, as with stock dkms $dkms_version" unbuilt oldvendor/1.0 "$loner"
fi

# 14. Purge: nothing of dkms-guard's is left (dpkg, not apt: the failed
#     kernel is still half-configured).
log "dpkg --purge dkms-guard"
run_in purge.log dpkg --purge dkms-guard
check "purge: dpkg exits 0 (got $rc)" test "$rc" -eq 0
owned >"$work/files-after"
check "purge: the same dkms-guard files as before install (none)" diff "$work/files-before" "$work/files-after"
check "purge: no diversion left" sh -c "! chroot '$root' dpkg-divert --list | grep -q dkms-guard"

summary "e2e-$suite"
