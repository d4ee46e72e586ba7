#!/bin/bash
# Builds dkms-guard's source package the way a Debian build daemon does: in a
# clean Debian 13 (trixie) chroot made by debootstrap (the buildd variant:
# build-essential and nothing else), trixie-backports enabled for
# golang-1.26-go, after only `apt-get build-dep`, as an unprivileged user,
# with the network cut off (unshare -n around dpkg-buildpackage: a new
# network namespace with only a loopback that is down). Then lintian
# (trixie's) on the source and binary packages: no error, no warning.
#
#   build.sh [--repro] DSC OUTDIR [ARCH...]
#
# ARCH defaults to amd64; the first is built natively, the others cross
# (Go needs no cross toolchain). The packages, logs and lintian's output go
# to OUTDIR. With --repro, amd64 is built once more in a fresh chroot from
# the same base, varying what a build must not depend on, and the two .deb
# files are compared byte for byte:
#   path      /build/dkms-guard       /srv/other/much/longer/build/path
#   user      builder (uid 1000)      rebuilder (uid 1234), another HOME
#   umask     0022                    0002
#   clock     now                     730 days on (faketime: dpkg, tar, make
#                                     and perl see it; Go's tools are static
#                                     and read the real clock; dpkg takes the
#                                     timestamps from debian/changelog anyway)
#   time zone UTC                     UTC-14
#   host name the machine's           another, in a new UTS namespace
# Both start with empty Go caches (debian/rules keeps them in the build tree).
#
# Needs root, debootstrap and the Debian mirror. The base chroot is cached in
# $DKMS_GUARD_DEBBUILD_CACHE (/var/cache/dkms-guard-debbuild) like the
# end-to-end suites' (testdata/e2e/lib.sh); change base_tag when base_make
# changes. DKMS_GUARD_DEBBUILD_KEEP=1 keeps the work directory.
set -euo pipefail

repro=
if [ "${1:-}" = --repro ]; then
	repro=1
	shift
fi
if [ $# -lt 2 ]; then
	echo "usage: $0 [--repro] DSC OUTDIR [ARCH...]" >&2
	exit 2
fi
dsc=$(realpath "$1")
out=$2
shift 2
archs=${*:-amd64}
first_arch=${archs%% *}
[ "$first_arch" = amd64 ] || { echo "the first architecture must be amd64 (the build machine's)" >&2; exit 2; }
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "builds on amd64 only" >&2; exit 2; }

suite=trixie
base_tag=buildd-v1
cache=${DKMS_GUARD_DEBBUILD_CACHE:-/var/cache/dkms-guard-debbuild}
base=$cache/$suite-$base_tag.tar
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/dkms-guard-debbuild.XXXXXX)
chroot_path=/usr/sbin:/usr/bin:/sbin:/bin
start=$SECONDS

log() { printf '\n=== %s (%ss)\n' "$*" "$((SECONDS - start))"; }
in_root() { # in_root ROOT COMMAND...
	local r=$1
	shift
	chroot "$r" env -i PATH="$chroot_path" LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
cleanup() {
	for m in $(grep -o " $work/[^ ]*" /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
	if [ -z "${DKMS_GUARD_DEBBUILD_KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

# base_make: the cached base, debootstrapped once: build-essential, the
# apt sources, and the two build users.
base_make() {
	local r=$work/base
	if [ -s "$base" ]; then
		log "reusing $base"
		return
	fi
	log "debootstrap --variant=buildd $suite from $mirror (cached in $base)"
	mkdir -p "$cache" "$r"
	debootstrap --variant=buildd "$suite" "$r" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$work/debootstrap.log"; exit 1; }
	cat >"$r/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb $mirror $suite-backports main
deb ${mirror%/debian}/debian-security $suite-security main
SRC
	in_root "$r" useradd --create-home --uid 1000 --shell /bin/sh builder
	in_root "$r" useradd --create-home --uid 1234 --shell /bin/sh --home-dir /var/lib/rebuilder rebuilder
	in_root "$r" apt-get clean
	rm -rf "$r"/var/lib/apt/lists/*
	tar -C "$r" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$r"
}

# chroot_down ROOT: what chroot_up mounted, unmounted.
chroot_down() {
	for m in $(grep -o " $1/[^ ]*" /proc/mounts | sort -r); do umount "$m"; done
}

# chroot_up ROOT: a fresh copy of the base, /proc and /dev mounted, apt's
# lists fetched.
chroot_up() {
	mkdir -p "$1"
	tar -C "$1" -xf "$base"
	mount -t proc proc "$1/proc"
	mount --bind /dev "$1/dev"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$1/dev/shm" # faketime's semaphores
	in_root "$1" apt-get update -q >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; exit 1; }
}

# build ROOT DIR USER UMASK PREFIX ARCH...: the source package unpacked in
# DIR by USER, build-dep, then each ARCH built offline; PREFIX (a command
# run before dpkg-buildpackage, with its arguments) varies the clock.
build() {
	local r=$1 dir=$2 user=$3 mask=$4 prefix=$5 a
	shift 5
	mkdir -p "$r$dir"
	cp "$dsc" "$(dirname "$dsc")/$(sed -n 's/^ [0-9a-f]\{64\} [0-9]* //p' "$dsc" | head -n1)" "$r$dir/"
	chroot "$r" chown -R "$user:" "$dir"
	log "apt-get build-dep in $r"
	in_root "$r" apt-get build-dep -y -q "$dir/$(basename "$dsc")" >>"$work/apt.log" 2>&1 ||
		{ tail -n 30 "$work/apt.log"; exit 1; }
	if [ -n "$prefix" ]; then
		in_root "$r" apt-get install -y -q --no-install-recommends faketime >>"$work/apt.log" 2>&1 ||
			{ tail -n 30 "$work/apt.log"; exit 1; }
	fi
	in_root "$r" dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' >"$work/installed-$user.txt"
	in_root "$r" runuser -u "$user" -- sh -c "cd '$dir' && dpkg-source -x '$(basename "$dsc")' src" >/dev/null
	for a in "$@"; do
		log "dpkg-buildpackage -a$a in $dir as $user, umask $mask${prefix:+, $prefix}, offline"
		# The network namespace is the host's side of the cut: the build
		# inside is shown what it can reach (nothing) before it starts.
		unshare --net --uts -- chroot "$r" env -i PATH="$chroot_path" sh -c '
			set -e
			[ -z "$1" ] || echo "$1" >/proc/sys/kernel/hostname
			echo "host name: $(cat /proc/sys/kernel/hostname)"
			echo "network interfaces: $(sed -n "s/^ *\([^ :]*\):.*/\1/p" /proc/net/dev | tr "\n" " ")"
			if timeout 5 bash -c ": >/dev/tcp/$2/80" 2>/dev/null; then
				echo "E: $2 is reachable: the network is not cut" >&2; exit 1
			fi
			echo "connect to $2 port 80 (deb.debian.org): $(timeout 5 bash -c ": >/dev/tcp/$2/80" 2>&1 | tail -n1 | sed "s/.*: //")"
			shift 2
			exec runuser -u "$@"' sh "${hostname:-}" "$mirror_ip" "$user" -- env -i PATH="$chroot_path" \
			HOME="$(in_root "$r" getent passwd "$user" | cut -d: -f6)" LANG=C.UTF-8 TZ="$tz" \
			sh -c "cd '$dir/src' && umask $mask && echo \"umask \$(umask), clock \$($prefix date -u), TZ=\$TZ\" && $prefix dpkg-buildpackage -b -us -uc -a$a" \
			>"$work/build-$user-$a.log" 2>&1 ||
			{ tail -n 60 "$work/build-$user-$a.log"; exit 1; }
		grep -m4 '^\(host name\|network interfaces\|connect to\|umask\)' "$work/build-$user-$a.log"
	done
}

mirror_ip=$(getent ahostsv4 "$(echo "$mirror" | sed 's|^[a-z]*://\([^/:]*\).*|\1|')" | awk 'NR == 1 { print $1 }')
[ -n "$mirror_ip" ] || { echo "cannot resolve $mirror" >&2; exit 1; }
version=$(sed -n 's/^Version: //p' "$dsc")
mkdir -p "$out"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes "$out"/*.log "$out"/*.txt

base_make

# The first build: every ARCH, as builder, then lintian.
root1=$work/root1 dir1=/build/dkms-guard tz=UTC hostname=
chroot_up "$root1"
# shellcheck disable=SC2086 # the list of architectures
build "$root1" "$dir1" builder 0022 "" $archs
for a in $archs; do
	cp "$root1$dir1/dkms-guard_${version}_$a.deb" "$root1$dir1/dkms-guard_${version}_$a.buildinfo" \
		"$root1$dir1/dkms-guard_${version}_$a.changes" "$out/"
	cp "$work/build-builder-$a.log" "$out/build-$a.log"
done
cp "$work/installed-builder.txt" "$out/"
log "lintian ($suite's) on the source package and the .deb files"
in_root "$root1" apt-get install -y -q --no-install-recommends lintian >>"$work/apt.log" 2>&1 ||
	{ tail -n 30 "$work/apt.log"; exit 1; }
in_root "$root1" lintian --version
in_root "$root1" runuser -u builder -- sh -c "cd '$dir1' && lintian --fail-on error,warning --info --display-info *.dsc *.deb" \
	>"$out/lintian.log" 2>&1 || { cat "$out/lintian.log"; echo "E: lintian found errors or warnings" >&2; exit 1; }
in_root "$root1" runuser -u builder -- sh -c "cd '$dir1' && lintian --fail-on none --pedantic --display-experimental *.dsc *.deb" \
	>"$out/lintian-pedantic.log" 2>&1 || true
echo "lintian: no error, no warning; $(grep -c . "$out/lintian.log" || true) other line(s) in $out/lintian.log," \
	"$(grep -c . "$out/lintian-pedantic.log" || true) with --pedantic in $out/lintian-pedantic.log"
chroot_down "$root1"
rm -rf "$root1"

if [ -n "$repro" ]; then
	root2=$work/root2 dir2=/srv/other/much/longer/build/path tz=UTC-14 hostname=rebuild.invalid
	chroot_up "$root2"
	build "$root2" "$dir2" rebuilder 0002 "faketime -f +730d" amd64
	cp "$root2$dir2/dkms-guard_${version}_amd64.deb" "$out/dkms-guard_${version}_amd64.rebuild.deb"
	cp "$work/build-rebuilder-amd64.log" "$out/rebuild-amd64.log"
	log "comparing"
	if cmp "$out/dkms-guard_${version}_amd64.deb" "$out/dkms-guard_${version}_amd64.rebuild.deb"; then
		sha256sum "$out/dkms-guard_${version}_amd64.deb" "$out/dkms-guard_${version}_amd64.rebuild.deb"
		echo "reproducible: the two builds of dkms-guard_${version}_amd64.deb are byte-identical"
	else
		echo "E: not reproducible: the two builds of dkms-guard_${version}_amd64.deb differ" >&2
		exit 1
	fi
fi
log "done: $(cd "$out" && echo *.deb)"
