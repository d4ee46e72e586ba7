# mkconfig.sh: sourced by the generators of the grub.cfg fixtures
# (internal/bootloader/testdata/gen.sh, internal/host/testdata/grub-order/gen.sh).
# It runs a grub-common package's real grub-mkconfig, with its real
# /etc/grub.d and grub-mkconfig_lib, in a scratch root.
#
# Get the packages with `apt-get download grub-common` (Debian 12: 2.06)
# and, for Debian 13's 2.12, with a scratch sources list:
#   echo 'deb http://deb.debian.org/debian trixie main' >S/sources.list
#   apt-get -o Dir::Etc::SourceList=S/sources.list -o Dir::Etc::SourceParts=/nonexistent \
#     -o Dir::State::Lists=S/lists -o Dir::Cache=S/cache update
#   apt-get ...same options... download grub-common/trixie
#
# Nothing touches this machine's boot: grub-mkconfig runs as root or with
# unprivileged user namespaces in a private mount namespace, chrooted into
# the scratch root, which sees the host's /usr/bin and /usr/lib (sh, sed,
# sort, dpkg) and otherwise only the package's files: its /etc/grub.d,
# /usr/sbin and /usr/share. Only what probes real hardware is stubbed:
# grub-probe (devices, filesystems, UUIDs: an ext4 / on /dev/sda1) and
# grub-mkrelpath (the path below its mount point).

grub_uuid=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9

# grub_stubs DIR writes the two programs that would probe the real machine.
grub_stubs() {
	cat >"$1/grub-probe" <<STUB
#!/bin/sh
# stub: a plain ext4 root filesystem on /dev/sda1, /boot on it
for a; do case \$a in --target=*) t=\${a#--target=} ;; esac; done
case \${t-} in
device) echo /dev/sda1 ;;
fs) echo ext2 ;;
fs_uuid) echo $grub_uuid ;;
partuuid) echo 0f1e2d3c-01 ;;
partmap) echo msdos ;;
drive) echo '(hd0,msdos1)' ;;
compatibility_hint) echo hd0,msdos1 ;;
esac
STUB
	cat >"$1/grub-mkrelpath" <<'STUB'
#!/bin/sh
# stub: /boot is on the root filesystem
echo "$1"
STUB
	chmod 0755 "$1/grub-probe" "$1/grub-mkrelpath"
}

# grub_root ROOT DEB makes ROOT anew from DEB's grub files, the stubs, and
# Debian's /etc/default/grub (grub-pc's) with the extra lines on stdin.
grub_root() {
	rm -rf "$1"
	mkdir -p "$1/dev" "$1/boot/grub" "$1/tmp" "$1/etc/default/grub.d" "$1/usr/bin" "$1/usr/lib" "$1/usr/lib64"
	for d in bin lib lib64 sbin; do ln -s "usr/$d" "$1/$d"; done
	dpkg-deb -x "$2" "$1.pkg"
	cp -a "$1.pkg/etc/grub.d" "$1/etc/grub.d"
	cp -a "$1.pkg/usr/sbin" "$1.pkg/usr/share" "$1/usr/"
	rm -rf "$1.pkg"
	grub_stubs "$1/usr/sbin"
	# Debian boots systemd: GRUB 2.06 adds "init-systemd" entries otherwise.
	ln -s /lib/systemd/systemd "$1/usr/sbin/init"
	{
		printf '%s\n' GRUB_DEFAULT=0 GRUB_TIMEOUT=5 GRUB_DISTRIBUTOR=Debian \
			'GRUB_CMDLINE_LINUX_DEFAULT="quiet"' 'GRUB_CMDLINE_LINUX=""'
		cat
	} >"$1/etc/default/grub"
}

# grub_mkconfig ROOT runs grub-mkconfig inside ROOT, grub.cfg on stdout.
grub_mkconfig() {
	userns=
	[ "$(id -u)" = 0 ] || userns=--map-root-user
	unshare --mount $userns sh -eu -c '
		r=$1
		for d in bin lib lib64; do
			[ ! -d "/usr/$d" ] || mount --rbind "/usr/$d" "$r/usr/$d"
		done
		mount --rbind /dev "$r/dev"
		env -i PATH=/usr/sbin:/usr/bin LC_ALL=C.UTF-8 grub_mkrelpath=/usr/sbin/grub-mkrelpath \
			chroot "$r" /usr/sbin/grub-mkconfig
	' mkconfig "$1"
}
