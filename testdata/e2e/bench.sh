#!/bin/bash
# Benchmarks, side by side in one run, in the bookworm end-to-end chroot:
# real dkms 3.0.10, real Debian module packages, real compiles. Results go
# to $BENCH_OUT (default dist/bench): hyperfine's JSON and markdown, and
# summary.txt with the ratios BENCHMARKS.md quotes. Needs root, hyperfine,
# debootstrap and the Debian mirror. Do not run another e2e suite alongside
# (the timings, and the fault suite's pkill, would mix).
# Usage: testdata/e2e/bench.sh DKMS-GUARD.deb
#
#  1. kernel hook: stock dkms_autoinstaller vs dkms-guard autoinstall with
#     --jobs 1 and the default, the same modules for the same kernel (seven
#     Debian module packages, one of which fails there); the installed .ko
#     files are compared too;
#  2. one upgraded module for 3 kernels: dkms install per kernel (what a
#     person runs by hand) vs dkms-guard rebuild --module (post-invoke's
#     scheduler);
#  3. a no-op apt run (apt-get install --reinstall less) with and without
#     dkms-guard's hooks, and the three hook processes vs /bin/true;
#  4. the kernel hook again with seven small modules (the suite's hello, a
#     second's compile each) in place of the Debian ones, which are removed
#     first: where the time goes besides the compiler (dkms's own bash,
#     depmod, dkms-guard's per-module cost) shows here.
# BENCH_PARTS="hook three apt small" picks them; BENCH_RUNS (3) sets the runs.
set -euo pipefail

deb=${1:?usage: bench.sh DKMS-GUARD.deb}
unset SUITE
. "$(dirname "$0")/lib.sh"
out=${BENCH_OUT:-$PWD/dist/bench}
runs=${BENCH_RUNS:-3}
parts=" ${BENCH_PARTS:-hook three apt small} " # which parts to run
want() { [[ $parts == *" $1 "* ]]; }
mkdir -p "$out"
command -v hyperfine >/dev/null || { echo "bench.sh needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }

# Real module packages from Debian 12 (main). openrazer-driver 3.5.1 builds
# for 6.1.0-47 but not for the newer 6.1 kernels: the vendor module that
# fails, for real.
modules="v4l2loopback-dkms acpi-call-dkms xtables-addons-dkms jool-dkms ddcci-dkms digimend-dkms openrazer-driver-dkms"
k=$new
three="$old $pair1 $new"

log "setting up: dkms-guard, $modules for $old; then headers for $pair1 and $new"
chroot_up
cp "$deb" "$root/tmp/dkms-guard.deb"
in_root apt-get install -y -q /tmp/dkms-guard.deb >"$work/setup.log" 2>&1 || { tail -n 30 "$work/setup.log"; exit 1; }
# The modules while the old kernel is the only one: their own postinsts
# build them for it (a module package whose build fails there fails itself).
# shellcheck disable=SC2086
in_root apt-get install -y -q --no-install-recommends $modules >>"$work/setup.log" 2>&1 || { tail -n 30 "$work/setup.log"; exit 1; }
in_root apt-get install -y -q "linux-headers-$pair1" "linux-headers-$new" >>"$work/setup.log" 2>&1 || { tail -n 30 "$work/setup.log"; exit 1; }
in_root dkms status >"$out/dkms-status.txt" 2>&1 || true
cat "$out/dkms-status.txt"

# reset_k: every module uninstalled for $k, as before its headers arrived.
cat >"$root/usr/sbin/bench-reset" <<'SH'
#!/bin/sh
# bench-reset KERNEL [MODULE]: uninstall (and unbuild) for KERNEL.
k=$1
dkms status -k "$k" 2>/dev/null | sed -n 's|^\([^/,]*\)/\([^,]*\),.*|\1/\2|p' | while read -r mv; do
	# uninstall, not remove: removing the last kernel's build removes the
	# module version from dkms's tree altogether.
	case $mv in ${2:-*}/*) dkms uninstall "$mv" -k "$k" >/dev/null 2>&1 || true; rm -rf "/var/lib/dkms/$mv/$k" ;; esac
done
rm -rf /var/lib/dkms/*/*/build
SH
chmod 755 "$root/usr/sbin/bench-reset"
kos() { find "$root/lib/modules/$k/updates" -name '*.ko*' -printf '%f\n' 2>/dev/null | sort; }
hook3() { # hook3 NAME: hyperfine, stock vs dkms-guard --jobs 1 vs default for $k, to $out/NAME.*
	hyperfine --runs "$runs" -i --style basic \
		--prepare "chroot $root /usr/sbin/bench-reset $k" \
		-n stock "chroot $root env -i PATH=$chroot_path /usr/lib/dkms/dkms_autoinstaller.distrib start $k" \
		-n "dkms-guard --jobs 1" "chroot $root env -i PATH=$chroot_path DKMS_GUARD_JOBS=1 dkms-guard autoinstall start $k" \
		-n "dkms-guard (default)" "chroot $root env -i PATH=$chroot_path dkms-guard autoinstall start $k" \
		--export-json "$out/$1.json" --export-markdown "$out/$1.md"
}

# 1. The kernel hook.
if want hook; then
log "kernel hook for $k: stock vs dkms-guard (--jobs 1, default); $runs runs each"
declare -A ko
for v in stock jobs1 default; do
	in_root bench-reset "$k"
	case $v in
	stock) in_root /usr/lib/dkms/dkms_autoinstaller.distrib start "$k" >"$work/$v.log" 2>&1 || true ;;
	jobs1) in_root env DKMS_GUARD_JOBS=1 dkms-guard autoinstall start "$k" >"$work/$v.log" 2>&1 || true ;;
	default) in_root dkms-guard autoinstall start "$k" >"$work/$v.log" 2>&1 || true ;;
	esac
	ko[$v]=$(kos | tr '\n' ' ')
	echo "$v: ${ko[$v]}"
done
same=yes
[ "${ko[stock]}" = "${ko[jobs1]}" ] && [ "${ko[stock]}" = "${ko[default]}" ] || same=no
hook3 hook
fi

# 2. One upgraded module for three kernels.
m=v4l2loopback
if want three; then
log "$m for $three: dkms install per kernel vs dkms-guard rebuild --module $m"
mv=$(in_root dkms status "$m" | sed -n 's|^\([^/,]*/[^,]*\),.*|\1|p' | head -n1)
reset3="for x in $three; do chroot $root /usr/sbin/bench-reset \$x $m; done"
by_hand="for x in $three; do chroot $root env -i PATH=$chroot_path dkms install $mv -k \$x; done"
hyperfine --runs "$runs" -i --style basic --shell bash \
	--prepare "$reset3" \
	-n "dkms install per kernel" "$by_hand" \
	-n "dkms-guard rebuild --module $m" "chroot $root env -i PATH=$chroot_path dkms-guard rebuild --module $m" \
	--export-json "$out/three.json" --export-markdown "$out/three.md"
fi

# 3. A no-op apt run, with and without the hooks; the hooks themselves.
if want apt; then
log "no-op apt run with and without dkms-guard's hooks"
in_root apt-get install -y -q less >/dev/null 2>&1
hooks=$root/etc/apt/apt.conf.d/80dkms-guard
hyperfine --runs $((runs * 5)) --warmup 1 --style basic --shell bash \
	-n "apt without the hooks" "mv $hooks $hooks.off; chroot $root env -i PATH=$chroot_path apt-get install -y -q --reinstall less; mv $hooks.off $hooks" \
	-n "apt with the hooks" "mv $hooks $hooks.off; mv $hooks.off $hooks; chroot $root env -i PATH=$chroot_path apt-get install -y -q --reinstall less" \
	--export-json "$out/apt.json" --export-markdown "$out/apt.md"
printf 'VERSION 3\nAPT::Architecture=amd64\n\nless 590-2.1 amd64 same = 590-2.1 amd64 same /var/cache/apt/archives/less_590-2.1_amd64.deb\n' >"$root/tmp/plan"
hyperfine --runs 50 --warmup 3 --style basic \
	-n "/bin/true x3" "chroot $root sh -c 'true; true </tmp/plan; true'" \
	-n "pre-invoke, apt-plan, post-invoke" "chroot $root sh -c 'dkms-guard pre-invoke; dkms-guard apt-plan </tmp/plan; dkms-guard post-invoke'" \
	--export-json "$out/hooks.json" --export-markdown "$out/hooks.md"
fi

# 4. The kernel hook with seven small modules (last: it removes the Debian
#    ones from dkms's tree).
if want small; then
	log "kernel hook for $k with seven small modules: stock vs dkms-guard (--jobs 1, default); $runs runs each"
	in_root dkms status | sed -n 's|^\([^/,]*/[^,]*\),.*|\1|p' | sort -u | while read -r mv; do
		in_root dkms remove "$mv" --all >/dev/null 2>&1 || true
	done
	for i in 1 2 3 4 5 6 7; do
		d=$root/usr/src/small$i-1.0
		cp -r "$here/modules/hello" "$d"
		mv "$d/hello.c" "$d/small$i.c"
		sed -i "s/hello/small$i/g; s/@VERSION@/1.0/" "$d/dkms.conf" "$d/Makefile"
		in_root dkms add "small$i/1.0" >/dev/null
	done
	hook3 small
fi

# The ratios, from hyperfine's means.
mean() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print([x['mean'] for x in r if x['command']==sys.argv[2]][0])" "$@"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
hook3_ratios() { # hook3_ratios NAME: hook3 NAME's means, and their ratios to stock
	local s j d
	s=$(mean "$out/$1.json" stock) j=$(mean "$out/$1.json" "dkms-guard --jobs 1") d=$(mean "$out/$1.json" "dkms-guard (default)")
	echo "stock ${s}s, --jobs 1 ${j}s ($(ratio "$j" "$s")x), default ${d}s ($(ratio "$d" "$s")x)"
}
{
	echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); dkms $dkms_version; kernel $k; $runs runs"
	if want hook; then
		echo "kernel hook: $(hook3_ratios hook); same .ko files: $same"
	fi
	if want three; then
		h=$(mean "$out/three.json" "dkms install per kernel") g=$(mean "$out/three.json" "dkms-guard rebuild --module $m")
		echo "$m for 3 kernels: by hand ${h}s, dkms-guard ${g}s ($(ratio "$g" "$h")x)"
	fi
	if want small; then
		echo "kernel hook, seven small modules: $(hook3_ratios small)"
	fi
	if want apt; then
		a=$(mean "$out/apt.json" "apt without the hooks") b=$(mean "$out/apt.json" "apt with the hooks")
		echo "no-op apt: without ${a}s, with ${b}s ($(ratio "$b" "$a")x)"
		t=$(mean "$out/hooks.json" "/bin/true x3") u=$(mean "$out/hooks.json" "pre-invoke, apt-plan, post-invoke")
		echo "hooks: /bin/true x3 ${t}s, dkms-guard's three ${u}s"
	fi
} | tee "$out/summary.txt"
