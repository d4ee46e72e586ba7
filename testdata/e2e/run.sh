#!/bin/bash
# End-to-end suite: real apt, dpkg and dkms 3.0.10 in a Debian bookworm chroot,
# real kernel headers, real module builds, dkms-guard installed from its .deb.
# Needs root, debootstrap and the Debian mirror.
# Usage: testdata/e2e/run.sh DKMS-GUARD.deb
#
# It reproduces the failure dkms-guard exists for (a header upgrade that
# leaves the package half-configured and apt exiting 100), installs
# dkms-guard (a previous build first), and checks that apt then finishes with
# exit 0 and one W: line, that an upgraded module package is built for every
# kernel, that dkms-guard upgrades inside an apt run that installs a kernel,
# that reinstalling dkms keeps the diversion working, that a removed
# dkms-guard leaves apt working with stock dkms behaviour back, and that purge
# leaves nothing of dkms-guard's behind.
set -euo pipefail

deb=${1:?usage: run.sh DKMS-GUARD.deb}
. "$(dirname "$0")/lib.sh"
new=6.1.0-56-amd64
# oldvendor also fails on these (6.1.190 and later): used after dkms is
# reinstalled, and after dkms-guard is removed.
third=6.1.0-54-amd64
fourth=6.1.0-55-amd64

# 1. A base chroot with dkms and the old kernel's headers, cached between runs.
chroot_up

# 2. Module packages: hello builds everywhere, oldvendor refuses 6.1.190 and
#    later, exclmod is for 5.x kernels only (dkms exit 77), wifi 2.0 does
#    not build for the new kernel.
mkdeb hello 1.0
mkdeb hello 2.0
mkdeb oldvendor 1.0
mkdeb exclmod 1.0
mkdeb wifi 1.0
mkdeb wifi 2.0 wifi2

log "installing the module packages for $old"
in_root apt-get install -y -q /tmp/hello-dkms_1.0_all.deb /tmp/oldvendor-dkms_1.0_all.deb /tmp/exclmod-dkms_1.0_all.deb /tmp/wifi-dkms_1.0_all.deb >"$work/modules.log" 2>&1 ||
	{ tail -n 40 "$work/modules.log"; exit 1; }
in_root dkms status >"$work/status0" 2>&1 || true
check "hello and oldvendor built for $old" grep -q "oldvendor/1.0, $old, x86_64: installed" "$work/status0"

# 3. Without dkms-guard: the new headers fail to configure and apt exits 100.
log "stock dkms: apt-get install linux-headers-$new"
run_in stock.log apt-get install -y -q "linux-headers-$new"
check "stock apt fails (exit $rc)" test "$rc" -eq 100
check "stock: run-parts reports the dkms hook" grep -q "header_postinst.d/dkms exited with return code" "$work/stock.log"
check "stock: header package left half-configured" sh -c "chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev}' linux-headers-$new | grep -q '^iF'"

# 4. Install dkms-guard from its .deb (a previous build: step 7 upgrades it),
#    then finish the interrupted upgrade.
log "apt-get install ./dkms-guard (previous build)"
# Every file of dkms-guard's, by name, before it is installed: purge must
# leave the same (step 10).
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
check "dkms's autoinstaller kept as .distrib" grep -q 'dkms_autoinstaller - A service' "$root/usr/lib/dkms/dkms_autoinstaller.distrib"
check "the shim runs dkms-guard" grep -q 'exec "/usr/sbin/dkms-guard" autoinstall' "$root/usr/lib/dkms/dkms_autoinstaller"
check "man page and bash completion installed" test -s "$root/usr/share/man/man8/dkms-guard.8.gz" -a -s "$root/usr/share/bash-completion/completions/dkms-guard"

log "dkms-guard: apt-get install -f (finishes the half-configured headers)"
run_in guard.log apt-get install -f -y -q
check "apt exits 0 (got $rc)" test "$rc" -eq 0
cat "$work/install.log" >>"$work/guard.log" # apt may configure the headers in the install's own run
check "exactly one W: line, for oldvendor" sh -c "test \$(grep -c '^W: dkms-guard' '$work/guard.log') -eq 1 && grep -q '^W: dkms-guard: oldvendor/1.0: build failed for $new' '$work/guard.log'"
check "no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/guard.log'"
check "header package configured" sh -c "chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev}' linux-headers-$new | grep -q '^ii'"
in_root dkms status >"$work/status1" 2>&1 || true
cat "$work/status1"
check "hello installed for $new" grep -q "hello/1.0, $new, x86_64: installed" "$work/status1"
check "oldvendor still installed for $old" grep -q "oldvendor/1.0, $old, x86_64: installed" "$work/status1"
check "oldvendor not installed for $new" sh -c "! grep -q 'oldvendor/1.0, $new, x86_64: installed' '$work/status1'"
check "exclmod skipped as unsupported" grep -q "exclmod/1.0: not built for $new, unsupported" "$work/guard.log"
check "notice file written" grep -q "oldvendor/1.0" "$root/var/lib/dkms-guard.notice"
check "build log kept" grep -q "oldvendor does not support" "$root/var/log/dkms-guard/$new/oldvendor-1.0.log"
run_in gstatus dkms-guard status
check "dkms-guard status exits 1 (got $rc)" test "$rc" -eq 1

# 5. Upgrading a module package: its new version ends up on both kernels
#    (stock common.postinst in a chroot builds for the newest kernel at most).
log "upgrade hello-dkms 1.0 -> 2.0"
run_in upgrade.log apt-get install -y -q /tmp/hello-dkms_2.0_all.deb
check "upgrade: apt exits 0 (got $rc)" test "$rc" -eq 0
in_root dkms status >"$work/status2" 2>&1 || true
check "hello 2.0 installed for $old" grep -q "hello/2.0, $old, x86_64: installed" "$work/status2"
check "hello 2.0 installed for $new" grep -q "hello/2.0, $new, x86_64: installed" "$work/status2"
check "upgrade: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/upgrade.log'"

# 6. An upgraded module package whose new version fails on the new kernel:
#    the package's own postinst fails (stock dkms, a real failure), and
#    post-invoke reports it as an error after dpkg.
log "upgrade wifi-dkms 1.0 -> 2.0, which does not build for $new"
run_in wifi.log apt-get install -y -q /tmp/wifi-dkms_2.0_all.deb
check "wifi: the package's own failure still fails apt (got $rc)" test "$rc" -eq 100
check "wifi: E: line after dpkg" grep -q "^E: dkms-guard: wifi/2.0: build failed for $new" "$work/wifi.log"
check "wifi: summary marks it [E]" grep -q "wifi/2.0 .*FAILED.*\[E\]" "$work/wifi.log"
in_root dpkg --remove --force-remove-reinstreq wifi-dkms >>"$work/wifi.log" 2>&1 || true

# 7. A real kernel image, installed in the same apt run that upgrades
#    dkms-guard: the previous build's pre-invoke and apt-plan, the new one's
#    kernel hooks and post-invoke share the state. /etc/kernel/postinst.d runs
#    dkms (our autoinstall), then dkms-guard's report, then initramfs-tools.
log "apt-get install linux-image-$new ./dkms-guard (upgrade)"
run_in image.log apt-get install -y -q "linux-image-$new" /tmp/dkms-guard.deb
check "image+upgrade: apt exits 0 (got $rc)" test "$rc" -eq 0
check "image+upgrade: dkms-guard $version installed" sh -c "chroot '$root' dpkg-query -W -f='\${Version} \${db:Status-Abbrev}' dkms-guard | grep -q '^$version ii'"
check "image+upgrade: one W: line, for oldvendor" sh -c "test \$(grep -c '^W: dkms-guard' '$work/image.log') -eq 1"
check "image+upgrade: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/image.log'"
check "image: module set reported before the initramfs is built" sh -c "
	r=\$(grep -n 'kernel $new gets its initramfs with DKMS modules: hello/2.0; without: oldvendor/1.0 (failed)' '$work/image.log' | head -n1 | cut -d: -f1)
	i=\$(grep -n 'update-initramfs: Generating /boot/initrd.img-$new' '$work/image.log' | head -n1 | cut -d: -f1)
	[ -n \"\$r\" ] && [ -n \"\$i\" ] && [ \"\$r\" -lt \"\$i\" ]"

# 8. dkms reinstalled (or upgraded): dpkg puts its autoinstaller at the
#    diverted name, our shim stays, and the next headers still go through it.
log "apt-get install --reinstall dkms, then linux-headers-$third"
run_in dkms-reinstall.log apt-get install -y -q --reinstall dkms
check "dkms reinstalled (exit $rc)" test "$rc" -eq 0
check "dkms reinstalled: still diverted" sh -c "chroot '$root' dpkg-divert --list /usr/lib/dkms/dkms_autoinstaller | grep -q 'by dkms-guard'"
check "dkms reinstalled: the shim is still in place" grep -q 'exec "/usr/sbin/dkms-guard" autoinstall' "$root/usr/lib/dkms/dkms_autoinstaller"
check "dkms reinstalled: dkms's file went to .distrib" grep -q 'dkms_autoinstaller - A service' "$root/usr/lib/dkms/dkms_autoinstaller.distrib"
run_in third.log apt-get install -y -q "linux-headers-$third"
check "headers after dkms reinstall: apt exits 0 (got $rc)" test "$rc" -eq 0
check "headers after dkms reinstall: oldvendor is a W: line" grep -q "^W: dkms-guard: oldvendor/1.0: build failed for $third" "$work/third.log"

# 9. Removed (not purged): apt.conf.d/80dkms-guard is a conffile and stays,
#    disabled; apt works, and kernel installs behave as with stock dkms.
log "apt-get remove dkms-guard"
run_in remove.log apt-get remove -y -q dkms-guard
check "remove: apt exits 0 (got $rc)" test "$rc" -eq 0
check "remove: the apt hook is disabled" sh -c "test -e '$root/etc/apt/apt.conf.d/80dkms-guard.disabled' && test ! -e '$root/etc/apt/apt.conf.d/80dkms-guard'"
check "remove: diversion removed" sh -c "! chroot '$root' dpkg-divert --list /usr/lib/dkms/dkms_autoinstaller | grep -q dkms-guard"
check "remove: dkms's autoinstaller is back" grep -q 'dkms_autoinstaller - A service' "$root/usr/lib/dkms/dkms_autoinstaller"
run_in unrelated.log apt-get install -y -q less
check "remove: an unrelated apt install exits 0 (got $rc)" test "$rc" -eq 0
check "remove: no dkms-guard line in it" sh -c "! grep -q 'dkms-guard' '$work/unrelated.log'"
# Should the hook be enabled again with the binary gone (an administrator's
# copy of the conffile), its Pre-Install-Pkgs line still lets apt go on.
mv "$root/etc/apt/apt.conf.d/80dkms-guard.disabled" "$root/etc/apt/apt.conf.d/80dkms-guard"
run_in orphan-hook.log apt-get install -y -q --reinstall less
check "remove: an enabled hook without its binary does not fail apt (exit $rc)" test "$rc" -eq 0
mv "$root/etc/apt/apt.conf.d/80dkms-guard" "$root/etc/apt/apt.conf.d/80dkms-guard.disabled"
run_in fourth.log apt-get install -y -q "linux-headers-$fourth"
check "remove: new headers fail as with stock dkms (exit $rc)" test "$rc" -eq 100
check "remove: the dkms hook is what failed" grep -q "header_postinst.d/dkms exited with return code" "$work/fourth.log"

# 10. Purge: nothing of dkms-guard's is left (dpkg, not apt: the failed
#     headers are still half-configured).
log "dpkg --purge dkms-guard"
run_in purge.log dpkg --purge dkms-guard
check "purge: dpkg exits 0 (got $rc)" test "$rc" -eq 0
owned >"$work/files-after"
check "purge: the same dkms-guard files as before install (none)" diff "$work/files-before" "$work/files-after"
check "purge: no diversion left" sh -c "! chroot '$root' dpkg-divert --list | grep -q dkms-guard"

summary e2e
