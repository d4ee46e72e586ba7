#!/bin/bash
# Fault end-to-end suite: real apt, dpkg and dkms 3.0.10 in a bookworm
# chroot, dkms-guard installed from its .deb, and a kernel upgrade with a
# failing module (oldvendor fails on 6.1.190 and later) interrupted by a
# SIGKILL of apt, dpkg or dkms-guard at each point where it can hurt:
# during apt-plan, during pre-invoke, during a module's build in the kernel
# hook, during post-invoke's builds. After each, dpkg --configure -a and
# the next apt run must finish the work: every package ii, every module
# that can build built for every kernel with headers, the interrupted run
# reported once, no state file half-written. Then the state directory on a
# full tmpfs and on a read-only bind mount during a real header install:
# apt exits 0 and says so in one W: line.
# Usage: testdata/e2e/faults.sh DKMS-GUARD.deb   (ONLY=PATTERN: those faults)
set -euo pipefail

deb=${1:?usage: faults.sh DKMS-GUARD.deb}
. "$(dirname "$0")/lib.sh"
kernel=$pair1 # oldvendor fails here (faults run on bookworm only)

chroot_up
mkdeb hello 1.0
POSTINST=newest mkdeb hello 2.0
mkdeb oldvendor 1.0
cp "$deb" "$root/tmp/dkms-guard.deb"
log "dkms-guard, hello 1.0 and oldvendor 1.0 for $old; headers for $kernel"
# Modules first: oldvendor-dkms's own postinst builds for the newest kernel,
# and would fail the package itself (its real failure, as with stock dkms).
in_root apt-get install -y -q /tmp/dkms-guard.deb /tmp/hello-dkms_1.0_all.deb /tmp/oldvendor-dkms_1.0_all.deb \
	>"$work/setup.log" 2>&1 || { tail -n 40 "$work/setup.log"; exit 1; }
# procps: the fault wrappers find their victims with pgrep and pkill, which
# see every process on the host: never run another e2e suite alongside.
in_root apt-get install -y -q procps "linux-headers-$kernel" >>"$work/setup.log" 2>&1 || { tail -n 40 "$work/setup.log"; exit 1; }

# Fault injection: wrappers in place of dkms-guard and dkms (apt runs dpkg
# and its hooks with its own PATH, DPkg::Path, so they replace the programs)
# kill the process named in /run/e2e-fault ("POINT TARGET") once,
# at that point. POINT is a dkms-guard command, or "build" for a dkms build
# or install in the kernel hook, "post-build" for one in post-invoke.
mv "$root/usr/sbin/dkms-guard" "$root/usr/sbin/dkms-guard.real"
cat >"$root/usr/sbin/dkms-guard" <<'WRAP'
#!/bin/sh
if [ -e /run/e2e-fault ]; then
	read -r point target </run/e2e-fault
	if [ "$point" = "$1" ]; then
		rm -f /run/e2e-fault
		case $target in
		apt) pkill -KILL -x apt-get ;;
		dkms-guard) kill -KILL $$ ;;
		esac
	fi
fi
exec /usr/sbin/dkms-guard.real "$@"
WRAP
# Builds run side by side: the first wrapper to take the fault file (mv is
# atomic) is the one that strikes.
mv "$root/usr/sbin/dkms" "$root/usr/sbin/dkms.real"
cat >"$root/usr/sbin/dkms" <<'WRAP'
#!/bin/sh
phase=build
pgrep -f 'dkms-guard.real post-invoke' >/dev/null && phase=post-build
if { [ "$1" = build ] || [ "$1" = install ]; } && read -r point target </run/e2e-fault 2>/dev/null &&
	[ "$point" = "$phase" ] && mv /run/e2e-fault /run/e2e-fault.$$ 2>/dev/null; then
	rm -f /run/e2e-fault.$$
	case $target in
	apt) pkill -KILL -x apt-get ;;
	dpkg) pkill -KILL -x dpkg ;;
	dkms-guard)
		# The compiler of the build (this wrapper is dkms, the leader of
		# the build's process group): it outlives dkms-guard, as make and
		# gcc do, until the next dkms-guard stops what the build lock says
		# was left running. dkms itself must die with dkms-guard.
		sleep 601 &
		echo $! >/run/e2e-cc.pid
		echo $$ >/run/e2e-dkms.pid
		pkill -KILL -f "dkms-guard.real (autoinstall|post-invoke)"
		wait # for ever, were dkms not to die with dkms-guard
		;;
	esac
	sleep 3 # the build goes on a while, as make does when apt or dpkg dies
fi
exec /usr/sbin/dkms.real "$@"
WRAP
chmod 755 "$root/usr/sbin/dkms-guard" "$root/usr/sbin/dkms"

# settle waits for what a killed apt leaves running: dpkg goes on with
# its work (and the kernel hook with its builds) when apt dies, holding
# dpkg's lock; a person waits for it before running dpkg --configure -a.
settle() {
	local i
	for i in $(seq 900); do
		pgrep -x dpkg >/dev/null || pgrep -f 'dkms-guard.real|dkms.real' >/dev/null || return 0
		sleep 1
	done
	echo "settle: still running after 15 minutes:" && pgrep -af 'dpkg|dkms'
}

# fault NAME POINT TARGET NEXT COMMAND...: arm the fault, run COMMAND (the
# upgrade it interrupts), then recover with dpkg --configure -a and the next
# apt run, NEXT ("again": the same command, as a person reruns an upgrade
# that stopped before dpkg; else "less": an unrelated install), and check
# that nothing is lost.
fault() {
	local name=$1 point=$2 target=$3 next=$4
	shift 4
	case $name in ${ONLY:-*}) ;; *) return 0 ;; esac
	log "$name: SIGKILL $target at $point"
	# The module the upgrade must end up with for $kernel, taken away first.
	in_root dkms remove hello/1.0 -k "$kernel" >/dev/null 2>&1 || true
	in_root dkms remove hello/2.0 -k "$kernel" >/dev/null 2>&1 || true
	echo "$point $target" >"$root/run/e2e-fault"
	rm -f "$root/run/e2e-cc.pid" "$root/run/e2e-dkms.pid"
	run_in "$name.log" "$@"
	settle
	check "$name: the fault happened" test ! -e "$root/run/e2e-fault"
	case $point/$target in *build/dkms-guard)
		check "$name: dkms, the build's process group leader, died with dkms-guard" gone "$root/run/e2e-dkms.pid" '*/usr/sbin/dkms [bi]*'
		;;
	esac
	check "$name: the interrupted command did not succeed (exit $rc)" test "$rc" -ne 0
	run_in "$name-configure.log" dpkg --configure -a
	check "$name: dpkg --configure -a exits 0 (got $rc)" test "$rc" -eq 0
	if [ "$next" = again ]; then
		run_in "$name-next.log" "$@"
	else
		run_in "$name-next.log" apt-get install -y -q --reinstall less
	fi
	check "$name: the next apt run exits 0 (got $rc)" test "$rc" -eq 0
	check "$name: every package ii" sh -c "! chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev} \${Package}\n' | grep -v '^ii ' | grep -v '^un '"
	# hello's newest version, built for every kernel with headers.
	local hv
	hv=$(in_root dkms status hello | sed -n 's|^hello/\([^,]*\),.*|\1|p' | sort -V | tail -n1)
	for k in "$old" "$kernel"; do
		check "$name: hello/$hv built for $k" sh -c "chroot '$root' dkms status hello/$hv -k $k | grep -q installed"
	done
	cat "$work/$name.log" "$work/$name-configure.log" "$work/$name-next.log" >"$work/$name-all.log"
	check "$name: the interrupted run is reported once at most" \
		sh -c "test \$(grep -c 'ended without post-invoke' '$work/$name-all.log') -le 1"
	check "$name: no state file half-written (no temp file left)" \
		sh -c "! ls -A '$root/var/lib/dkms-guard' | grep -q '^[.]'"
	in_root /usr/sbin/dkms-guard.real status >"$work/$name-status.log" 2>&1 || true
	check "$name: every state file reads" sh -c "! grep -q '^W: dkms-guard: ignored' '$work/$name-status.log'"
	case $point/$target in *build/dkms-guard)
		check "$name: the killed build's compiler, left running, was stopped by the next run" gone "$root/run/e2e-cc.pid" 'sleep 601 '
		check "$name: ... which said so" grep -q "^W: dkms-guard: a build left running by a dkms-guard that was killed" "$work/$name-all.log"
		;;
	esac
}

# gone PIDFILE PATTERN: the process PIDFILE names has ended (or is a zombie
# waiting for its reaper; its pid not merely reused by another): its command
# line (arguments joined by spaces) no longer matches the glob PATTERN.
gone() {
	local p cmd
	p=$(cat "$1" 2>/dev/null) && [ -n "$p" ] || { echo "no pid in $1"; return 1; }
	cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || true
	case $cmd in $2)
		echo "still running: pid $p, $cmd"
		return 1
		;;
	esac
}

headers() { echo apt-get install -y -q --reinstall "linux-headers-$kernel"; }

fault apt-in-apt-plan apt-plan apt again $(headers)
fault guard-in-apt-plan apt-plan dkms-guard again $(headers)
fault apt-in-pre-invoke pre-invoke apt again $(headers)
fault guard-in-pre-invoke pre-invoke dkms-guard again $(headers)
fault guard-in-kernel-build build dkms-guard less $(headers)
fault dpkg-in-kernel-build build dpkg less $(headers)
fault apt-in-kernel-build build apt less $(headers)
# post-invoke builds hello 2.0 for the kernels its postinst left out (the
# newest only, as outside a chroot).
fault guard-in-post-invoke post-build dkms-guard less apt-get install -y -q /tmp/hello-dkms_2.0_all.deb
if [ -n "${ONLY:-}" ]; then summary "faults-e2e (ONLY=$ONLY)"; exit; fi
check "guard-in-post-invoke: the next run built what the killed post-invoke did not" \
	grep -q "hello/2.0: installed for" "$work/guard-in-post-invoke-next.log"

# The state directory on a full tmpfs, then on a read-only bind mount,
# during a real header install: apt exits 0, one W: line says so.
for how in full read-only; do
	log "state directory $how during apt-get install --reinstall linux-headers-$kernel"
	in_root dkms remove hello/2.0 -k "$kernel" >/dev/null 2>&1 || true
	state=$root/var/lib/dkms-guard
	if [ "$how" = full ]; then
		mount -t tmpfs -o size=16k,mode=0700 tmpfs "$state"
		dd if=/dev/zero of="$state/fill" bs=1k count=64 2>/dev/null || true
	else
		mount --bind "$state" "$state" && mount -o remount,bind,ro "$state"
	fi
	run_in "state-$how.log" apt-get install -y -q --reinstall "linux-headers-$kernel"
	umount "$state"
	check "state $how: apt exits 0 (got $rc)" test "$rc" -eq 0
	check "state $how: one W: line about it" \
		sh -c "test \$(grep -c '^W: dkms-guard: cannot write to /var/lib/dkms-guard' '$work/state-$how.log') -eq 1"
	check "state $how: no E: line" sh -c "! grep -q '^E: dkms-guard' '$work/state-$how.log'"
	check "state $how: hello still built for $kernel" sh -c "chroot '$root' dkms status hello/2.0 -k $kernel | grep -q installed"
	check "state $how: oldvendor's failure still said" grep -q "^W: dkms-guard: oldvendor/1.0: build failed for $kernel" "$work/state-$how.log"
	rm -f "$root/run/dkms-guard/state-unusable"
done

summary faults-e2e
