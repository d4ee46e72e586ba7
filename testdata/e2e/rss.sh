#!/bin/bash
# Peak RSS of every dkms-guard command, at growing input sizes, in a fake
# root (--root) with fake dkms, depmod and dpkg-query: what is measured is
# dkms-guard itself, not a compiler. /usr/bin/time's maximum resident set
# size covers the command and the small shells it runs. Writes
# $BENCH_OUT/rss.txt (default dist/bench). Needs no root.
# Usage: testdata/e2e/rss.sh DKMS-GUARD-BINARY
set -euo pipefail

bin=$(realpath "${1:?usage: rss.sh DKMS-GUARD-BINARY}")
"$bin" --version >/dev/null # a missing binary would measure the failed exec
out=${BENCH_OUT:-$PWD/dist/bench}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
k=6.1.0-56-amd64

mkdir -p "$work/bin"
cat >"$work/bin/dkms" <<'SH'
#!/bin/sh
action=$1; shift
while [ $# -gt 0 ]; do case $1 in -m) m=$2; shift;; -v) v=$2; shift;; -k) k=$2; shift;; esac; shift; done
if [ "$action" = install ]; then
	d=$DKMS_GUARD_ROOT/var/lib/dkms/$m
	mkdir -p "$d/$v/$k/x86_64/module" && ln -sfn "$v/$k/x86_64" "$d/kernel-$k-x86_64"
fi
SH
printf '#!/bin/sh\nexit 0\n' >"$work/bin/depmod"
printf '#!/bin/sh\nexit 1\n' >"$work/bin/dpkg-query"
for p in update-initramfs lsinitramfs update-grub; do printf '#!/bin/sh\nexit 0\n' >"$work/bin/$p"; done
chmod 755 "$work/bin"/*
export PATH=$work/bin:$PATH DKMS_GUARD_JOBS=auto

# root N: a root with N modules, each added, none built for $k.
root() {
	local r=$work/root-$1 i
	rm -rf "$r"
	mkdir -p "$r/lib/modules/$k/build/include" "$r/var/lib/dkms" "$r/usr/src" "$r/boot"
	ln -s /proc "$r/proc"
	touch "$r/boot/vmlinuz-$k"
	for i in $(seq "$1"); do
		mkdir -p "$r/usr/src/mod$i-1.0" "$r/var/lib/dkms/mod$i/1.0"
		printf 'PACKAGE_NAME="mod%d"\nPACKAGE_VERSION="1.0"\nAUTOINSTALL="yes"\n' "$i" >"$r/usr/src/mod$i-1.0/dkms.conf"
		ln -s "$r/usr/src/mod$i-1.0" "$r/var/lib/dkms/mod$i/1.0/source"
	done
	echo "$r"
}

# plan N: apt's protocol for N packages, one of them a module's.
plan() {
	printf 'VERSION 3\nAPT::Architecture=amd64\n\n'
	awk -v n="$1" 'BEGIN { for (i = 1; i < n; i++) printf "pkg%d 1.0-%d amd64 same < 1.1-%d amd64 same /var/cache/apt/archives/pkg%d_1.1-%d_amd64.deb\n", i, i, i, i, i }'
	echo "mod1-dkms 1.0 all none < 1.1 all none /var/cache/apt/archives/mod1-dkms_1.1_all.deb"
}

rss() { # rss LABEL COMMAND...: the command's peak RSS
	local label=$1
	shift
	/usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>&1 || true
	printf '%-44s %8s kB\n' "$label" "$(tail -n1 "$work/rss")"
}

{
	echo "peak RSS (kB) of dkms-guard $("$bin" --version | awk '{print $NF}'); $(nproc) CPUs"
	rss "--help" "$bin" --help
	for n in 1 100 1000; do
		r=$(root "$n")
		export DKMS_GUARD_ROOT=$r
		rss "pre-invoke + post-invoke, $n modules" sh -c "'$bin' pre-invoke; '$bin' post-invoke"
		rss "autoinstall start K, $n modules" "$bin" autoinstall start "$k"
		rss "status, $n modules" sh -c "'$bin' status || true"
		rss "rebuild (nothing to do), $n modules" sh -c "'$bin' rebuild || true"
		rss "kernel-prerm K, $n modules" "$bin" kernel-prerm "$k"
		rss "unpin, $n modules" sh -c "'$bin' unpin || true"
	done
	r=$(root 10)
	export DKMS_GUARD_ROOT=$r
	for n in 100 10000 100000; do
		plan "$n" >"$work/plan"
		rss "pre-invoke + apt-plan, $n packages" sh -c "'$bin' pre-invoke; '$bin' apt-plan <'$work/plan'"
		rss "post-invoke after that" "$bin" post-invoke
	done
} | tee "$out/rss.txt"
