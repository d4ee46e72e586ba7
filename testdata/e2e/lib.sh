# Shared by the end-to-end suites that run in a Debian chroot (run.sh,
# faults.sh): sourced, not run. SUITE=bookworm (Debian 12, dkms 3.0.10, the
# default) or trixie (Debian 13, dkms 3.2.2) picks the release. It sets up
# $root from a cached base chroot (dkms and the old kernel's headers), the
# check helpers and the module packages. Needs root, debootstrap and the
# Debian mirror.
#
# DKMS_GUARD_E2E_DKMS=DIR runs the suite on another dkms installed over the
# release's package: DIR is that dkms's `make install-debian DESTDIR=DIR`
# tree (upstream's newest, say). The suite builds no dkms itself.

here=$(cd "$(dirname "$0")" && pwd)
cache=${DKMS_GUARD_E2E_CACHE:-/var/cache/dkms-guard-e2e}
work=${DKMS_GUARD_E2E_WORK:-$(mktemp -d /var/tmp/dkms-guard-e2e.XXXXXX)}
root=$work/root
fails=0 passes=0

# The release under test and its kernels: old is in the cached base, new is
# the upgrade stock dkms fails on, pair1 and pair2 are installed in one apt
# run, loner with dpkg -i alone. The test modules that fail (oldvendor,
# wifi 2.0) refuse kernels from fail_from on: every kernel but old.
suite=${SUITE:-bookworm}
case $suite in
bookworm)
	old=6.1.0-47-amd64 new=6.1.0-56-amd64 pair1=6.1.0-54-amd64 pair2=6.1.0-55-amd64 loner=6.1.0-57-amd64
	fail_from="6, 1, 190" dkms_version=3.0.10
	;;
trixie)
	old=6.12.107+deb13-amd64 new=6.12.117+deb13-amd64 pair1=6.12.113+deb13-amd64 pair2=6.12.115+deb13-amd64
	loner=6.12.118+deb13-amd64 fail_from="6, 12, 110" dkms_version=3.2.2
	;;
*)
	echo "SUITE must be bookworm or trixie" >&2
	exit 2
	;;
esac

mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

log() { printf '\n=== %s\n' "$*"; }
pass() { passes=$((passes + 1)); printf 'ok   %s\n' "$*"; }
fail() { fails=$((fails + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
chroot_path=/usr/sbin:/usr/bin:/sbin:/bin
in_root() { chroot "$root" env -i PATH="$chroot_path" LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
# run_in LOG COMMAND...: run COMMAND in the chroot, output to $work/LOG,
# exit status in $rc (expected failures must not end the suite), then show
# dkms-guard's lines of it.
run_in() {
	local out=$work/$1
	shift
	set +e
	in_root "$@" >"$out" 2>&1
	rc=$?
	set -e
	grep -n 'dkms-guard\|update-initramfs: Generating' "$out" || true
}
# summary prints the closing line the CI reads, and fails when a check did.
summary() {
	printf '\n%s: %d passed, %d failed\n' "$1" "$passes" "$fails"
	[ "$fails" -eq 0 ]
}

cleanup() {
	for m in $(grep -o " $root[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
	if [ -z "${DKMS_GUARD_E2E_KEEP:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# chroot_up: the base chroot (dkms and the old kernel's headers), from the
# cache or made and cached, with /proc and /dev mounted. A suite that needs
# more sets base_extra (packages) and base_tag (a name for that set: change
# it with the set, so that the cache is made anew): that chroot is cached
# too, made from the base one.
chroot_up() {
	local base=$cache/$suite-dkms-$old.tar want
	want=$base
	[ -z "${base_extra:-}" ] || want=$cache/$suite-dkms-$old-$base_tag.tar
	mkdir -p "$cache" "$root"
	if [ -s "$want" ]; then
		log "reusing $want"
		tar -C "$root" -xf "$want"
	else
		base_make "$base"
		if [ "$want" != "$base" ]; then
			log "adding $base_extra (cached in $want)"
			mount -t proc proc "$root/proc"
			in_root apt-get update -q >"$work/apt.log" 2>&1
			# shellcheck disable=SC2086 # a list of packages
			in_root apt-get install -y -q --no-install-recommends $base_extra >>"$work/apt.log" 2>&1 ||
				{ tail -n 30 "$work/apt.log"; exit 1; }
			in_root apt-get clean
			umount "$root/proc"
			tar -C "$root" -cf "$want.tmp" . && mv "$want.tmp" "$want"
		fi
	fi
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	mount -t devpts devpts "$root/dev/pts" 2>/dev/null || true
	in_root apt-get update -q >"$work/apt.log" 2>&1
	if [ -n "${DKMS_GUARD_E2E_DKMS:-}" ]; then
		dkms_over
		dkms_version=$(grep -o -m1 '"dkms-[0-9][^"]*"' "$DKMS_GUARD_E2E_DKMS/usr/sbin/dkms" | tr -d '"')
		dkms_version=${dkms_version#dkms-}
	fi
}

# base_make TAR: $root is the base chroot, TAR's copy or made and kept in TAR.
base_make() {
	if [ -s "$1" ]; then
		log "reusing $1"
		tar -C "$root" -xf "$1"
		return
	fi
	log "debootstrap $suite from $mirror (cached in $1)"
	debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$work/debootstrap.log"; exit 1; }
	cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SRC
	mount -t proc proc "$root/proc"
	in_root apt-get update -q >"$work/apt.log" 2>&1
	in_root apt-get install -y -q --no-install-recommends dkms "linux-headers-$old" >>"$work/apt.log" 2>&1 ||
		{ tail -n 30 "$work/apt.log"; exit 1; }
	in_root apt-get clean
	umount "$root/proc"
	tar -C "$root" -cf "$1.tmp" . && mv "$1.tmp" "$1"
}

# dkms_over: DKMS_GUARD_E2E_DKMS's files copied over the chroot, each to the
# name dpkg would write it to: after dpkg reinstalls Debian's dkms it is laid
# again, and dkms-guard's shim (dkms_autoinstaller is diverted) stays.
dkms_over() {
	local f
	[ -n "${DKMS_GUARD_E2E_DKMS:-}" ] || return 0
	(cd "$DKMS_GUARD_E2E_DKMS" && find . -type f -printf '%P\n') | while read -r f; do
		install -D -m "$(stat -c %a "$DKMS_GUARD_E2E_DKMS/$f")" "$DKMS_GUARD_E2E_DKMS/$f" \
			"$root$(chroot "$root" dpkg-divert --truename "/$f")"
	done
}

# mkdeb NAME VERSION [SOURCE-DIR]: a module package as dh_dkms makes it,
# reduced to the calls that matter, in $work/debs and the chroot's /tmp.
# With POSTINST=newest its postinst builds for the newest kernel only.
mkdeb() {
	local name=$1 version=$2 d=$work/pkg/$1-$2
	mkdir -p "$d/DEBIAN" "$d/usr/src" "$work/debs"
	cp -r "$here/modules/${3:-$name}" "$d/usr/src/$name-$version"
	sed -i "s/@VERSION@/$version/" "$d/usr/src/$name-$version/dkms.conf"
	sed -i -e "s/@FAIL_FROM@/$fail_from/" -e "s/@VERSION@/$version/" "$d/usr/src/$name-$version"/*.c
	cat >"$d/DEBIAN/control" <<CTL
Package: $name-dkms
Version: $version
Architecture: all
Maintainer: dkms-guard e2e <e2e@invalid>
Depends: dkms
Description: $name test module for the dkms-guard end-to-end suites
CTL
	if [ "${POSTINST:-}" = newest ]; then
		# What common.postinst does outside a chroot: the newest kernel only
		# (in a chroot, dkms 3.0.10 builds for every kernel itself).
		printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then dkms add -m %s -v %s; k=$(ls /lib/modules | sort -V | tail -n1); dkms install -m %s -v %s -k "$k"; fi\n' \
			"$name" "$version" "$name" "$version" >"$d/DEBIAN/postinst"
	else
		printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then /usr/lib/dkms/common.postinst %s %s "" "" "$2"; fi\n' \
			"$name" "$version" >"$d/DEBIAN/postinst"
	fi
	printf '#!/bin/sh\nset -e\ncase "$1" in remove|upgrade|deconfigure) dkms remove -m %s -v %s --all || true;; esac\n' \
		"$name" "$version" >"$d/DEBIAN/prerm"
	chmod 755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm"
	dpkg-deb --root-owner-group -b "$d" "$work/debs/$name-dkms_${version}_all.deb" >/dev/null
	cp "$work/debs/$name-dkms_${version}_all.deb" "$root/tmp/"
}
