#!/bin/bash
# Boot end-to-end suite: a real Debian 12 disk image with GRUB, booted under
# QEMU, shows that dkms-guard never leaves a machine less bootable than
# stock dkms. Needs root, debootstrap, qemu-system-x86, fdisk (sfdisk),
# zstd, e2fsprogs and the Debian mirror.
# Usage: testdata/e2e/boot.sh DKMS-GUARD.deb
#
# The image has kernel $OLD_KVER with critmod-dkms 1.0, a stand-in for a
# boot-critical module such as zfs: the initramfs loads it and an
# init-premount script refuses to boot without it. critmod 1.0 does not
# build for $NEW_KVER; critmod 2.0 does. vpndrv-dkms 1.0 (the same: 2.0
# builds everywhere), a module the machine loads at boot through
# /etc/modules-load.d, is loaded wherever the old kernel boots. Three legs, each from the same
# cached base image, each ending in a real boot read over the serial console:
#
#   stock      no dkms-guard: installing $NEW_KVER fails (apt exits 100), the
#              old kernel stays the default and boots with critmod
#   unmanaged  dkms-guard with MANAGE_BOOT_ENTRY=no: apt exits 0, GRUB's
#              default is the new kernel, whose initramfs lacks critmod: the
#              boot stops in the initramfs (why the pin exists)
#   guarded    dkms-guard: apt exits 0 with an E: line and the old kernel
#              stays the default (it boots with critmod, and vpndrv loaded);
#              then critmod-dkms 2.0 and vpndrv-dkms 2.0 arrive, post-invoke
#              builds them for the new kernel, rebuilds its initramfs and
#              removes the pin: the new kernel boots with both
#   kept       (no boot of its own) then critmod-dkms 3.0, which builds on no
#              kernel, fails apt as its postinst does, but dkms-guard puts
#              the kept 2.0 back on both kernels; after update-initramfs -u
#              -k all, every kernel's initramfs holds critmod 2.0
#
# Boots run under KVM where it can boot a stock kernel, else under TCG
# (software emulation, about 30 s a boot). The base image is cached in
# $CACHE (about 300 MB), downloaded .debs too.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
GUARD=${1:?usage: boot.sh DKMS-GUARD.deb}
CACHE=${DKMS_GUARD_E2E_CACHE:-/var/cache/dkms-guard-e2e}/boot
WORK=${DKMS_GUARD_E2E_WORK:-$(mktemp -d /var/tmp/dkms-guard-boot.XXXXXX)}
LOGS=$WORK/logs
SUITE=bookworm
OLD_KVER=6.1.0-47-amd64
NEW_KVER=6.1.0-56-amd64
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
IMG_MIB=4096          # sparse; about 1.6 GiB really used
PART_START=2048       # sectors (1 MiB): msdos label + room for GRUB's core.img (MBR gap)
BASE_RECIPE=6         # bump whenever build_base changes: invalidates the cache
BASE_ZST=$CACHE/base-$SUITE-$OLD_KVER-r$BASE_RECIPE.img.zst
IMG=$WORK/disk.img
MNT=$WORK/mnt
fails=0 passes=0

log() { printf '%s [%s] %s\n' "$(date +%T)" "${phase:-main}" "$*" | tee -a "$LOGS/run.log" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
timing() { printf '%-32s %8ss\n' "$1" "$2" | tee -a "$LOGS/timings.txt" >&2; }
pass() { passes=$((passes + 1)); printf 'ok   %s\n' "$*"; }
fail() { fails=$((fails + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# ---- mirror: the bookworm (non-security) stanza of the host's deb822 sources ------------
src_uri() { # $1: awk regex for the stanza
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk -v re="$1" 'BEGIN{RS=""} $0 ~ re {for(i=1;i<=NF;i++) if($i=="URIs:"){print $(i+1); exit}}' "$f"
	done | head -n1
}
MIRROR=${MIRROR:-$(src_uri 'Suites:[^\n]*bookworm( |\n|$)')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(src_uri 'bookworm-security')
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

# ---- loop device + mounts, always cleaned up ------------------------------------------
# The root partition is attached with an offset loop device (losetup -o): it works even
# where the kernel cannot scan partitions (this build host: `losetup -P` creates no p1, and
# there is no device-mapper for kpartx).
# Pitfall: /etc/grub.d/10_linux (and prepare_grub_to_access_device in grub-mkconfig_lib) do
#   case ${GRUB_DEVICE} in /dev/loop/*|/dev/loop[0-9]) ... exit 0 (file-backed loop)
# so a chroot whose / is /dev/loopN gets a grub.cfg WITHOUT any Linux entry. We mount through
# a block node of another name (/dev/dkmsg-e2e-root-PID, same major:minor), which grub-probe
# reports as the root device. And 10_linux writes root=UUID=... only if
# /dev/disk/by-uuid/$UUID exists (no udev here), else root=<device>: we add that link too.
LOOP="" DISKLOOP=""
MOUNTS=() HOSTNODES=()
cleanup() {
	set +e
	local i n
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		# on INT/TERM our killed children may still hold the mount for a moment
		for n in 1 2 3 4 5; do umount "${MOUNTS[i]}" 2>/dev/null && continue 2; sleep 1; done
		umount -l "${MOUNTS[i]}"
	done
	MOUNTS=()
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	[ -n "$DISKLOOP" ] && losetup -d "$DISKLOOP"
	LOOP="" DISKLOOP=""
	for ((i = ${#HOSTNODES[@]} - 1; i >= 0; i--)); do
		if [ -d "${HOSTNODES[i]}" ]; then rmdir "${HOSTNODES[i]}"; else rm -f "${HOSTNODES[i]}"; fi
	done
	HOSTNODES=()
}
trap 'exit 130' INT TERM
domount() { mount "$@"; MOUNTS+=("${*: -1}"); }
hostnode() { # record a path created in the host's /dev, removed by cleanup
	HOSTNODES+=("$1")
}

attach() { # mount the image's root partition on $MNT, with /dev /proc /sys for chroot use
	local rootdev=/dev/dkmsg-e2e-root-$$ uuid d
	mkdir -p "$MNT"
	LOOP=$(losetup -f --show -o $((PART_START * 512)) --sizelimit $(((IMG_MIB * 2048 - PART_START) * 512)) "$IMG")
	if [ "${1:-}" = --mkfs ]; then mkfs.ext4 -q -L dkmsg-root "$LOOP"; fi
	mknod "$rootdev" b $((0x$(stat -c %t "$LOOP"))) $((0x$(stat -c %T "$LOOP")))
	hostnode "$rootdev"
	uuid=$(blkid -s UUID -o value "$LOOP")
	if [ ! -e "/dev/disk/by-uuid/$uuid" ]; then
		for d in /dev/disk /dev/disk/by-uuid; do
			[ -d "$d" ] || { mkdir "$d" && hostnode "$d"; }
		done
		ln -s "../../${rootdev#/dev/}" "/dev/disk/by-uuid/$uuid"
		hostnode "/dev/disk/by-uuid/$uuid"
	fi
	domount "$rootdev" "$MNT"
}
chroot_mounts() {
	mkdir -p "$MNT"/{dev,proc,sys}
	domount --bind /dev "$MNT/dev"
	domount --bind /dev/pts "$MNT/dev/pts"
	domount -t proc proc "$MNT/proc"
	domount -t sysfs sysfs "$MNT/sys"
}
detach() {
	sync
	fstrim "$MNT" 2>/dev/null || true # punch holes into the sparse backing file
	cleanup
}
in_chroot() {
	chroot "$MNT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
}
apt_on() { # network for apt in the chroot; share downloaded .debs between runs
	cp /etc/resolv.conf "$MNT/etc/resolv.conf"
	mkdir -p "$CACHE/apt-archives/partial"
	domount --bind "$CACHE/apt-archives" "$MNT/var/cache/apt/archives"
}
apt_off() { # keep the .deb cache and the build host's resolver out of the image
	umount "$MNT/var/cache/apt/archives"
	unset 'MOUNTS[-1]'
	rm -f "$MNT/etc/resolv.conf"
}

# ---- base image -----------------------------------------------------------------------
build_base() {
	phase=base
	local t0 t uuid
	t0=$(now)
	rm -f "$IMG"
	truncate -s ${IMG_MIB}M "$IMG"
	printf 'label: dos\nstart=%s, type=83, bootable\n' $PART_START | sfdisk -q "$IMG"
	attach --mkfs
	uuid=$(blkid -s UUID -o value "$LOOP")
	log "root fs UUID=$uuid, mirror $MIRROR"

	t=$(now)
	mkdir -p "$CACHE/debootstrap"
	debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" "$SUITE" "$MNT" "$MIRROR" \
		>"$LOGS/debootstrap.log" 2>&1 || die "debootstrap, see $LOGS/debootstrap.log"
	timing "base: debootstrap" "$(elapsed "$t")"

	chroot_mounts
	# apt: no recommends, no docs; no daemons started inside the chroot; fast dpkg
	rm -f "$MNT/etc/apt/sources.list"
	cat >"$MNT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$MNT/etc/apt/apt.conf.d/90e2e"
	printf 'path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/locale/*\npath-exclude=/usr/share/info/*\n' \
		>"$MNT/etc/dpkg/dpkg.cfg.d/90e2e-nodoc"
	echo force-unsafe-io >"$MNT/etc/dpkg/dpkg.cfg.d/90e2e-unsafe-io"
	printf '#!/bin/sh\nexit 101\n' >"$MNT/usr/sbin/policy-rc.d"
	chmod 755 "$MNT/usr/sbin/policy-rc.d"
	echo dkmsg-e2e >"$MNT/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 dkmsg-e2e\n' >"$MNT/etc/hosts"
	printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$MNT/etc/fstab"
	# grub-pc asks for install devices; we install the boot sector ourselves (below)
	in_chroot debconf-set-selections <<<'grub-pc grub-pc/install_devices_empty boolean true'

	t=$(now)
	apt_on
	{
		in_chroot apt-get update &&
			in_chroot apt-get install -y "linux-image-$OLD_KVER" "linux-headers-$OLD_KVER" \
				dkms initramfs-tools grub-pc systemd-sysv udev kmod zstd
	} >"$LOGS/base-apt.log" 2>&1 || die "apt-get install, see $LOGS/base-apt.log"
	timing "base: apt install" "$(elapsed "$t")"

	# serial console for GRUB and the kernel; panic=5 so an initramfs panic reboots, and
	# qemu -no-reboot turns that reboot into an exit
	sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=1/' \
		-e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0,115200n8 panic=5"/' \
		"$MNT/etc/default/grub"
	cat >>"$MNT/etc/default/grub" <<'EOF'
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF

	# the boot-report harness: one oneshot unit that writes facts to ttyS0 and powers off
	cat >"$MNT/usr/local/sbin/e2e-report" <<'EOF'
#!/bin/sh
{
	echo "E2E-BEGIN"
	echo "E2E-UNAME=$(uname -r)"
	echo "E2E-CMDLINE=$(cat /proc/cmdline)"
	if [ -d /sys/module/critmod ]; then echo "E2E-CRITMOD=loaded"; else echo "E2E-CRITMOD=absent"; fi
	if [ -d /sys/module/vpndrv ]; then echo "E2E-VPNDRV=loaded"; else echo "E2E-VPNDRV=absent"; fi
	lsmod | grep -E '^(Module|critmod) ' | sed 's/^/E2E-LSMOD: /'
	echo "E2E-UPTIME=$(cut -d' ' -f1 /proc/uptime)"
	echo "E2E-END"
} >/dev/ttyS0 2>&1
systemctl poweroff --no-block
EOF
	chmod 755 "$MNT/usr/local/sbin/e2e-report"
	cat >"$MNT/etc/systemd/system/e2e-report.service" <<'EOF'
[Unit]
Description=dkms-guard e2e boot report (writes to ttyS0, then powers off)
After=basic.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/e2e-report

[Install]
WantedBy=multi-user.target
EOF
	in_chroot systemctl enable e2e-report.service >/dev/null 2>&1
	in_chroot systemctl mask serial-getty@ttyS0.service getty@tty1.service >/dev/null 2>&1

	install_grub "$uuid"
	install_critmod
	apt_off
	in_chroot apt-get clean
	detach

	t=$(now)
	mkdir -p "$CACHE"
	rm -f "$CACHE"/base-*.img.zst # older recipes
	zstd -q -T0 -3 -f "$IMG" -o "$BASE_ZST.tmp"
	mv "$BASE_ZST.tmp" "$BASE_ZST"
	timing "base: zstd to cache" "$(elapsed "$t")"
	timing "base: total (cold build)" "$(elapsed "$t0")"
	log "cached $(du -h "$BASE_ZST" | cut -f1) at $BASE_ZST; image uses $(du -h "$IMG" | cut -f1) of ${IMG_MIB}M"
}

# GRUB for BIOS without partition devices: build core.img with grub-mkimage (an embedded
# config that finds the root fs by UUID, what grub-install would generate), then let
# grub-bios-setup write boot.img into the MBR and core.img into the MBR gap of the whole-disk
# loop device, mapped as (hd0) by a device.map.
install_grub() {
	local uuid=$1
	mkdir -p "$MNT/boot/grub/i386-pc"
	cp "$MNT"/usr/lib/grub/i386-pc/*.mod "$MNT"/usr/lib/grub/i386-pc/*.lst "$MNT"/usr/lib/grub/i386-pc/boot.img \
		"$MNT/boot/grub/i386-pc/"
	cat >"$MNT/boot/grub/i386-pc/early.cfg" <<EOF
search.fs_uuid $uuid root hd0,msdos1
set prefix=(\$root)/boot/grub
EOF
	in_chroot grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img -c /boot/grub/i386-pc/early.cfg \
		-p /boot/grub biosdisk part_msdos ext2 search_fs_uuid
	DISKLOOP=$(losetup -f --show "$IMG")
	echo "(hd0) $DISKLOOP" >"$MNT/boot/grub/device.map"
	in_chroot grub-bios-setup -d /boot/grub/i386-pc -m /boot/grub/device.map "$DISKLOOP" \
		>"$LOGS/grub-bios-setup.log" 2>&1 || die "grub-bios-setup, see $LOGS/grub-bios-setup.log"
	rm -f "$MNT/boot/grub/device.map"
	losetup -d "$DISKLOOP"
	DISKLOOP=""
	in_chroot update-grub >"$LOGS/base-update-grub.log" 2>&1 || die "update-grub, see $LOGS/base-update-grub.log"
}

restore_base() {
	phase=restore
	local t
	t=$(now)
	rm -f "$IMG"
	zstd -q -d -f "$BASE_ZST" -o "$IMG" # zstd writes sparse files when the output is a file
	timing "warm: restore base image" "$(elapsed "$t")"
}

# ---- qemu -----------------------------------------------------------------------------
# ACCEL=auto picks kvm, except on hosts whose /dev/kvm is the PVM backend (kvm_pvm module:
# this firecracker build machine): PVM runs only PVM-aware guest kernels, a stock Debian
# kernel hangs right after GRUB's "Loading initial ramdisk" there, so fall back to TCG.
ACCEL=${ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then ACCEL=kvm; else ACCEL=tcg; fi
fi
case $ACCEL in
kvm) ACCEL_ARGS=(-enable-kvm) ;; # plain default CPU: -cpu host dies on some nested hosts (MSR 0x10a)
tcg) ACCEL_ARGS=(-accel tcg) ;;
*) echo "ACCEL must be auto, kvm or tcg" >&2; exit 2 ;;
esac

# boot NAME EXPECTED_KVER EXPECTED_MARKER [VPNDRV]: boot $IMG, then check the
# serial log (VPNDRV=loaded: and that modules-load.d loaded vpndrv)
boot() {
	local name=$1 want_k=$2 want_m=$3 want_v=${4:-} serial=$LOGS/boot-$1.serial t rc dt kver marker lsm grub vpn
	phase=boot-$name
	rm -f "$serial"
	t=$(now)
	rc=0
	timeout --kill-after=10 "$BOOT_TIMEOUT" qemu-system-x86_64 "${ACCEL_ARGS[@]}" -m 1024 -smp 2 \
		-nographic -monitor none -serial "file:$serial" -no-reboot \
		-drive "file=$IMG,format=raw" >"$LOGS/boot-$name.qemu.log" 2>&1 || rc=$?
	dt=$(elapsed "$t")
	kver=$(tr -d '\r' <"$serial" | grep -a -o -m1 -E '(CRITMOD-(OK|MISSING) kernel=|E2E-UNAME=)[^ ]+' | sed 's/.*=//' || true)
	marker=$(tr -d '\r' <"$serial" | grep -a -o -m1 -E 'CRITMOD-(OK|MISSING)' || true)
	lsm=$(tr -d '\r' <"$serial" | grep -a -o -m1 -E '^E2E-CRITMOD=[a-z]+' || echo 'E2E-CRITMOD=(no report: userspace not reached)')
	grub=$(tr -d '\r' <"$serial" | grep -a -o "Booting \`[^']*'" | tail -n1 || true)
	vpn=$(tr -d '\r' <"$serial" | grep -a -o -m1 -E '^E2E-VPNDRV=[a-z]+' || true)
	timing "boot $name ($ACCEL)" "$dt"
	printf '%-12s qemu_rc=%-3s %6ss  kernel=%-16s %-16s %s  grub: %s\n' "$name" "$rc" "$dt" "${kver:-?}" "${marker:-?}" "$lsm" "$grub" |
		tee -a "$LOGS/results.txt" >&2
	check "$name: qemu ended by itself (exit $rc)" test "$rc" != 124 -a "$rc" != 137
	check "$name: booted $want_k with $want_m (got ${kver:-nothing} ${marker:-nothing}; $serial)" \
		test "$kver" = "$want_k" -a "$marker" = "$want_m"
	if [ -n "$want_v" ]; then
		check "$name: vpndrv $want_v through modules-load.d (got ${vpn:-no report})" test "$vpn" = "E2E-VPNDRV=$want_v"
	fi
}

# ---- the boot-critical stand-in: a DKMS package checked by an initramfs script --------
# mkdeb NAME VERSION SOURCE-DIR: a module package as dh_dkms makes it, reduced to the
# calls that matter (the same as the other end-to-end suite's).
mkdeb() {
	local name=$1 version=$2 d=$WORK/pkg/$1-$2
	mkdir -p "$d/DEBIAN" "$d/usr/src"
	cp -r "$here/modules/$3" "$d/usr/src/$name-$version"
	sed -i "s/@VERSION@/$version/" "$d/usr/src/$name-$version/dkms.conf"
	# @FAIL_FROM@: fails on $NEW_KVER; @VERSION@: MODULE_VERSION, for modinfo
	sed -i -e "s/@FAIL_FROM@/6, 1, 190/" -e "s/@VERSION@/$version/" "$d/usr/src/$name-$version"/*.c
	cat >"$d/DEBIAN/control" <<CTL
Package: $name-dkms
Version: $version
Architecture: all
Maintainer: dkms-guard e2e <e2e@invalid>
Depends: dkms
Description: $name test module for the dkms-guard boot suite
CTL
	printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then /usr/lib/dkms/common.postinst %s %s "" "" "$2"; fi\n' \
		"$name" "$version" >"$d/DEBIAN/postinst"
	printf '#!/bin/sh\nset -e\ncase "$1" in remove|upgrade|deconfigure) dkms remove -m %s -v %s --all || true;; esac\n' \
		"$name" "$version" >"$d/DEBIAN/prerm"
	chmod 755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm"
	dpkg-deb --root-owner-group -b "$d" "$WORK/$name-dkms_${version}_all.deb" >/dev/null
}

install_critmod() {
	cp "$WORK/critmod-dkms_1.0_all.deb" "$WORK/vpndrv-dkms_1.0_all.deb" "$MNT/tmp/"
	# vpndrv: not in the initramfs, loaded at boot by systemd-modules-load
	echo vpndrv >"$MNT/etc/modules-load.d/vpndrv.conf"
	# loaded by the initramfs (/conf/modules, modprobed between init-top and init-premount)
	echo critmod >>"$MNT/etc/initramfs-tools/modules"
	# checked in init-premount: init-top runs before the modules are loaded
	cat >"$MNT/etc/initramfs-tools/scripts/init-premount/critmod-check" <<'CHECK'
#!/bin/sh
# Stop the boot when the boot-critical module critmod is not loaded.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac

. /scripts/functions
read -r kver </proc/sys/kernel/osrelease
if [ -d /sys/module/critmod ]; then
	echo "CRITMOD-OK kernel=$kver"
	exit 0
fi
echo "CRITMOD-MISSING kernel=$kver"
# panic= on the command line makes panic() reboot (qemu -no-reboot then exits);
# without it, panic() drops to an initramfs shell
panic "critmod is not loaded: refusing to boot $kver"
CHECK
	chmod 755 "$MNT/etc/initramfs-tools/scripts/init-premount/critmod-check"
	# common.postinst builds for the newest kernel (the chroot's uname -r is the host's)
	{
		in_chroot apt-get install -y /tmp/critmod-dkms_1.0_all.deb /tmp/vpndrv-dkms_1.0_all.deb &&
			in_chroot dkms status &&
			in_chroot update-initramfs -u -k "$OLD_KVER"
	} >"$LOGS/critmod-install.log" 2>&1 || die "critmod install, see $LOGS/critmod-install.log"
	rm "$MNT/tmp/critmod-dkms_1.0_all.deb" "$MNT/tmp/vpndrv-dkms_1.0_all.deb"
	grep -q "critmod/1.0, $OLD_KVER, x86_64: installed" "$LOGS/critmod-install.log" ||
		die "critmod 1.0 was not built for $OLD_KVER, see $LOGS/critmod-install.log"
	grep -q "vpndrv/1.0, $OLD_KVER, x86_64: installed" "$LOGS/critmod-install.log" ||
		die "vpndrv 1.0 was not built for $OLD_KVER, see $LOGS/critmod-install.log"
}

install_guard() { # install_guard [MANAGE_BOOT_ENTRY value]
	cp "$GUARD" "$MNT/tmp/dkms-guard.deb"
	in_chroot apt-get install -y /tmp/dkms-guard.deb >"$LOGS/guard-install.log" 2>&1 ||
		die "apt-get install ./dkms-guard.deb, see $LOGS/guard-install.log"
	rm "$MNT/tmp/dkms-guard.deb"
	if [ -n "${1:-}" ]; then
		sed -i "s/^MANAGE_BOOT_ENTRY=.*/MANAGE_BOOT_ENTRY=$1/" "$MNT/etc/default/dkms-guard"
	fi
}

# apt_run LOG COMMAND...: run apt in the image, output to $LOGS/LOG, exit status in $rc.
apt_run() {
	local out=$LOGS/$1
	shift
	set +e
	in_chroot "$@" >"$out" 2>&1
	rc=$?
	set -e
	grep -n 'dkms-guard\|update-initramfs: Generating\|Generating grub' "$out" || true
}

in_initrd() { in_chroot lsinitramfs "/boot/initrd.img-$1" | grep -q '/critmod\.ko'; }
# initrd_critmod KERNEL: the version of the critmod module inside KERNEL's
# initramfs, as modinfo reads it from the unpacked copy.
initrd_critmod() {
	# shellcheck disable=SC2016 # expanded in the image's shell
	in_chroot sh -c 'd=$(mktemp -d) && unmkinitramfs "/boot/initrd.img-$1" "$d" &&
		modinfo -F version "$(find "$d" -name "critmod.ko*" | head -n1)"; rm -rf "$d"' sh "$1" 2>/dev/null || true
}

# ---- main -----------------------------------------------------------------------------
mkdir -p "$WORK" "$LOGS" "$CACHE"
trap 'cleanup; [ -n "${DKMS_GUARD_E2E_KEEP:-}" ] || rm -rf "$WORK"' EXIT
: >"$LOGS/timings.txt"
: >"$LOGS/results.txt"
t_all=$(now)
log "accel=$ACCEL old=$OLD_KVER new=$NEW_KVER cache=$CACHE work=$WORK"
mkdeb critmod 1.0 critmod
mkdeb critmod 2.0 critmod2
mkdeb vpndrv 1.0 vpndrv
mkdeb vpndrv 2.0 vpndrv2
mkdeb critmod 3.0 critmod3
if [ ! -s "$BASE_ZST" ]; then
	build_base
fi

# Leg 1: stock dkms. The kernel's postinst fails, zz-update-grub never runs.
phase=stock t=$(now)
restore_base
attach
chroot_mounts
apt_on
apt_run stock-apt.log apt-get install -y "linux-image-$NEW_KVER" "linux-headers-$NEW_KVER"
check "stock: installing $NEW_KVER fails (apt exit $rc)" test "$rc" -eq 100
check "stock: a dkms hook is what failed" grep -q "_postinst.d/dkms exited with return code" "$LOGS/stock-apt.log"
apt_off
detach
timing "stock: prepare" "$(elapsed "$t")"
boot stock "$OLD_KVER" CRITMOD-OK loaded

# Leg 2: dkms-guard with MANAGE_BOOT_ENTRY=no. The upgrade completes and the new kernel,
# whose initramfs lacks critmod, becomes the default: the boot ends in the initramfs.
phase=unmanaged t=$(now)
restore_base
attach
chroot_mounts
install_guard no
apt_on
apt_run unmanaged-apt.log apt-get install -y "linux-image-$NEW_KVER" "linux-headers-$NEW_KVER"
check "unmanaged: apt exits 0 (got $rc)" test "$rc" -eq 0
check "unmanaged: an E: line says the next boot will likely fail" \
	grep -q "^E: dkms-guard: $NEW_KVER lacks boot-critical critmod/1.0 .*MANAGE_BOOT_ENTRY=no .*will likely fail" "$LOGS/unmanaged-apt.log"
check "unmanaged: no pin" test ! -e "$MNT/etc/default/grub.d/zz-dkms-guard.cfg"
apt_off
detach
timing "unmanaged: prepare" "$(elapsed "$t")"
boot unmanaged "$NEW_KVER" CRITMOD-MISSING

# Leg 3: dkms-guard. The old kernel stays the default until the new one has critmod.
phase=guarded t=$(now)
restore_base
attach
chroot_mounts
install_guard
apt_on
apt_run guarded-apt.log apt-get install -y "linux-image-$NEW_KVER" "linux-headers-$NEW_KVER"
check "guarded: apt exits 0 (got $rc)" test "$rc" -eq 0
check "guarded: an E: line says the machine keeps booting $OLD_KVER" \
	grep -q "^E: dkms-guard: $NEW_KVER lacks boot-critical critmod/1.0 (in the initramfs of $OLD_KVER.*): the machine will keep booting $OLD_KVER (GRUB: GRUB_DEFAULT in /etc/default/grub.d/zz-dkms-guard.cfg)" "$LOGS/guarded-apt.log"
check "guarded: the pin names $OLD_KVER's menu entry" \
	grep -q "^GRUB_DEFAULT='gnulinux-advanced-.*>gnulinux-$OLD_KVER-advanced-" "$MNT/etc/default/grub.d/zz-dkms-guard.cfg"
check "guarded: grub.cfg defaults to $OLD_KVER" \
	grep -q "set default=\"gnulinux-advanced-.*>gnulinux-$OLD_KVER-advanced-" "$MNT/boot/grub/grub.cfg"
check "guarded: the kernel packages are configured" \
	sh -c "chroot '$MNT' dpkg-query -W -f='\${db:Status-Abbrev}\n' linux-image-$NEW_KVER linux-headers-$NEW_KVER | grep -vc '^ii' | grep -q '^0$'"
check "guarded: the notice says which kernel boots next" \
	grep -q "^The next boot uses kernel $OLD_KVER: dkms-guard keeps it the default" "$MNT/var/lib/dkms-guard.notice"
apt_off
detach
timing "guarded: prepare" "$(elapsed "$t")"
boot guarded-pinned "$OLD_KVER" CRITMOD-OK loaded

phase=guarded-fixed t=$(now)
attach
chroot_mounts
apt_on
cp "$WORK/critmod-dkms_2.0_all.deb" "$WORK/vpndrv-dkms_2.0_all.deb" "$MNT/tmp/"
apt_run fixed-apt.log apt-get install -y /tmp/critmod-dkms_2.0_all.deb /tmp/vpndrv-dkms_2.0_all.deb
check "fixed: apt exits 0 (got $rc)" test "$rc" -eq 0
check "fixed: critmod 2.0 installed for $NEW_KVER" \
	sh -c "chroot '$MNT' dkms status critmod | grep -q 'critmod/2.0, $NEW_KVER, x86_64: installed'"
check "fixed: vpndrv 2.0 installed for $NEW_KVER" \
	sh -c "chroot '$MNT' dkms status vpndrv | grep -q 'vpndrv/2.0, $NEW_KVER, x86_64: installed'"
check "fixed: the pin is gone with an N: line" grep -q "^N: dkms-guard: the boot entry is no longer pinned to $OLD_KVER" "$LOGS/fixed-apt.log"
check "fixed: no pin file" test ! -e "$MNT/etc/default/grub.d/zz-dkms-guard.cfg"
check "fixed: $NEW_KVER's initramfs has critmod" in_initrd "$NEW_KVER"
check "fixed: no notice" test ! -e "$MNT/var/lib/dkms-guard.notice"
apt_off
detach
timing "guarded-fixed: prepare" "$(elapsed "$t")"
boot guarded-fixed "$NEW_KVER" CRITMOD-OK loaded

# Kept, after the boots (a boot of its own would cost CI a minute): critmod
# 3.0 builds on no kernel. dkms-guard kept 2.0's builds before dpkg ran and
# puts them back, and update-initramfs -u -k all keeps critmod in every
# kernel's initramfs.
phase=kept t=$(now)
attach
chroot_mounts
cp "$WORK/critmod-dkms_3.0_all.deb" "$MNT/tmp/"
apt_run kept-apt.log apt-get install -y /tmp/critmod-dkms_3.0_all.deb
rm "$MNT/tmp/critmod-dkms_3.0_all.deb"
check "kept: critmod 3.0's own postinst still fails apt (got $rc)" test "$rc" -eq 100
check "kept: one E: line says critmod 2.0 was kept" \
	test "$(grep '^E: dkms-guard: .*critmod.*kept' "$LOGS/kept-apt.log" | sort -u | wc -l)" -eq 1
for k in "$OLD_KVER" "$NEW_KVER"; do
	check "kept: critmod/2.0 installed for $k" \
		sh -c "chroot '$MNT' dkms status critmod/2.0 -k '$k' | grep -q installed"
done
apt_run kept-initramfs.log update-initramfs -u -k all
check "kept: update-initramfs -u -k all exits 0 (got $rc)" test "$rc" -eq 0
for k in "$OLD_KVER" "$NEW_KVER"; do
	check "kept: $k's initramfs has critmod" in_initrd "$k"
	v=$(initrd_critmod "$k")
	check "kept: the critmod in $k's initramfs is 2.0 (got '$v')" test "$v" = 2.0
done
detach
timing "kept: prepare and check" "$(elapsed "$t")"

phase=main
timing "total" "$(elapsed "$t_all")"
cat "$LOGS/results.txt"
printf '\nboot-e2e: %d passed, %d failed\n' "$passes" "$fails"
[ "$fails" -eq 0 ]
