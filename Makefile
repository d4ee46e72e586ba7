# dkms-guard. Thin on purpose: the logic is in Go and tested there.
#
#   make build        ./dkms-guard and, in build/, its man page, bash completion
#                     and the licenses of the Go modules linked into it
#   make test         the test command (README): unit tests + testscript suites
#   make e2e          the three end-to-end suites (root, network to the mirror),
#                     on make deb's package, or with DEB_FROM=chroot on make
#                     deb-repro's (CI's choice):
#   make e2e-apt        real apt, dpkg and dkms in Debian 12 and 13 chroots, from the .deb
#                       (SUITE="bookworm trixie" by default); then, per release, the
#                       channels: GRUB, unattended-upgrades, node_exporter, motd
#   make e2e-faults     SIGKILLs and full or read-only disks during real upgrades
#   make e2e-boot       a real disk image booted under QEMU (boot safety)
#   make bench        the benchmarks BENCHMARKS.md quotes, side by side in one run,
#                     into dist/bench: Go benchmarks, peak RSS, and (root, network)
#                     stock dkms vs dkms-guard in the bookworm chroot
#   make source       dist/dkms-guard_VERSION.dsc: the source package
#   make deb          dist/dkms-guard_VERSION_ARCH.deb for amd64 and arm64,
#                     with the Go on PATH
#   make deb-chroot   (root, network) the same from the source package alone,
#                     in a clean Debian 13 chroot offline, into dist/chroot
#   make deb-repro    deb-chroot, then amd64 again in another chroot: same bytes
#   make lint-deb     lintian on them: no error, no warning
#   make install      install to $(DESTDIR)$(PREFIX) (a package's staging tree);
#                     without DESTDIR, on this system, running the package's own
#                     maintainer scripts around it (the diversion)
#   make uninstall    undo install

PREFIX    ?= /usr
SBINDIR   ?= $(PREFIX)/sbin
DESTDIR   ?=
GO        ?= go
BINARY    ?=
DEB_ARCHS ?= amd64 arm64
SUITE     ?= bookworm trixie
# The .deb the end-to-end suites install: host (make deb, the Go on PATH)
# or chroot (make deb-repro: built offline in a clean Debian 13 chroot from
# the source package alone, as CI does; the Debian 12 suites then prove a
# package built on 13 installs and runs on 12).
DEB_FROM  ?= host
# The version has one home, debian/changelog.
VERSION   ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)

# The hook scripts quote it, but apt.conf cannot: apt keys the protocol
# version on the first word of the hook command, which must be this path.
ifneq ($(words $(SBINDIR)),1)
$(error SBINDIR "$(SBINDIR)" must be one word: apt's Pre-Install-Pkgs hook names it unquoted)
endif

# What goes where: install and uninstall both use this list.
SHIM       := /usr/lib/dkms/dkms_autoinstaller
SCRIPTS    := hooks/dkms_autoinstaller:$(SHIM) \
              hooks/kernel-preinst:/etc/kernel/preinst.d/00dkms-guard \
              kernel-postinst.d/dkms-guard:/etc/kernel/postinst.d/dkms-guard \
              hooks/kernel-prerm:/etc/kernel/prerm.d/dkms-guard \
              update-motd.d/95-dkms-guard:/etc/update-motd.d/95-dkms-guard
CONFFILES  := apt.conf.d/80dkms-guard:/etc/apt/apt.conf.d/80dkms-guard \
              default/dkms-guard:/etc/default/dkms-guard
DOCS       := build/dkms-guard.8.gz:$(PREFIX)/share/man/man8/dkms-guard.8.gz \
              build/dkms-guard.bash-completion:$(PREFIX)/share/bash-completion/completions/dkms-guard \
              build/THIRD-PARTY-LICENSES:$(PREFIX)/share/doc/dkms-guard/THIRD-PARTY-LICENSES
HOST_GO    := env -u GOOS -u GOARCH CGO_ENABLED=0 $(GO)
ifeq ($(DEB_FROM),host)
E2E_DEB    := $(CURDIR)/dist/dkms-guard_$(VERSION)_amd64.deb
E2E_DEP    := deb
else ifeq ($(DEB_FROM),chroot)
E2E_DEB    := $(CURDIR)/dist/chroot/dkms-guard_$(VERSION)_amd64.deb
E2E_DEP    := deb-repro
else
$(error DEB_FROM "$(DEB_FROM)" must be host or chroot)
endif

.PHONY: all build docs test bench e2e e2e-apt e2e-faults e2e-boot source deb deb-chroot deb-repro lint-deb install uninstall clean

all: build

build: docs
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -tags urfave_cli_no_docs \
		-ldflags "-s -w -X main.version=$(VERSION)" -o dkms-guard ./cmd/dkms-guard

# Generated for the build host even when cross-compiling (GOARCH from
# debian/rules): the generator runs here. The licenses come from vendor/
# (go mod vendor copies each module's LICENSE): no network, no module cache.
docs:
	mkdir -p build
	$(HOST_GO) run ./cmd/dkms-guard-docs "$(VERSION)" build
	gzip -9nf build/dkms-guard.8
	for m in $$($(HOST_GO) list -mod=vendor -tags urfave_cli_no_docs -deps \
			-f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}' ./cmd/dkms-guard | sort -u); do \
		printf '%s\n%s\n\n' "$$m" "$$(printf '%s' "$$m" | tr -c '\n' '=')"; \
		cat "vendor/$${m%@*}"/LICENSE*; printf '\n\n'; \
	done > build/THIRD-PARTY-LICENSES

test:
	$(GO) test -race -count=1 ./...

e2e: e2e-apt e2e-faults e2e-boot

bench: deb build
	mkdir -p dist/bench
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee dist/bench/go.txt
	testdata/e2e/rss.sh ./dkms-guard
	testdata/e2e/bench.sh "$(CURDIR)/dist/dkms-guard_$(VERSION)_amd64.deb"

e2e-apt: $(E2E_DEP)
	for s in $(SUITE); do \
		SUITE=$$s testdata/e2e/run.sh "$(E2E_DEB)" || exit 1; \
		SUITE=$$s testdata/e2e/channels.sh "$(E2E_DEB)" || exit 1; \
	done

e2e-faults: $(E2E_DEP)
	testdata/e2e/faults.sh "$(E2E_DEB)"

e2e-boot: $(E2E_DEP)
	testdata/e2e/boot.sh "$(E2E_DEB)"

# The source package: the files git knows (tracked, or untracked and not
# ignored), exported to dist/src and packed there. Never the build outputs
# or dist/ itself, whatever lies around in the checkout.
source:
	rm -rf dist/src dist/*.dsc dist/*.tar.xz && mkdir -p dist/src/dkms-guard-$(VERSION)
	git ls-files -z --cached --others --exclude-standard | \
		tar --null -T - --ignore-failed-read -cf - | tar -C dist/src/dkms-guard-$(VERSION) -xf -
	cd dist && dpkg-source -b src/dkms-guard-$(VERSION) >src/source.log 2>&1 || { cat src/source.log; exit 1; }
	ls -l dist/*.dsc

# Built from that private copy: dpkg-buildpackage writes to its parent,
# dist/src, so checkouts side by side never write to the same place; the
# packages are moved to dist/. -d: the Go on PATH builds when golang-1.26-go
# is not installed, with its build cache. Go cross-compiles: no cross
# toolchain is needed. The clean build from the source package alone, with
# empty caches, is make deb-chroot.
deb: source
	rm -f dist/*.deb dist/*.buildinfo dist/*.changes
	c=$$($(GO) env GOCACHE 2>/dev/null || true); \
	for a in $(DEB_ARCHS); do \
		(cd dist/src/dkms-guard-$(VERSION) && \
			env $${c:+GOCACHE="$$c"} DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -b -d -us -uc -a$$a) \
			>"dist/build-$$a.log" 2>&1 || { tail -n 40 "dist/build-$$a.log"; exit 1; }; \
		mv dist/src/dkms-guard_$(VERSION)_$$a.deb dist/src/dkms-guard_$(VERSION)_$$a.buildinfo \
			dist/src/dkms-guard_$(VERSION)_$$a.changes dist/; \
	done
	ls -l dist/*.deb

# The source package built in a clean Debian 13 chroot (trixie-backports'
# Go, apt-get build-dep, no network), for DEB_ARCHS, then lintian; the
# packages in dist/chroot. deb-repro builds amd64 a second time in a fresh
# chroot (another path, clock, umask, user, host name) and compares the
# bytes. Root, debootstrap and the Debian mirror; see testdata/debbuild.
deb-chroot: source
	nice -n 10 testdata/debbuild/build.sh "$(CURDIR)/dist/dkms-guard_$(VERSION).dsc" "$(CURDIR)/dist/chroot" $(DEB_ARCHS)

deb-repro: source
	nice -n 10 testdata/debbuild/build.sh --repro "$(CURDIR)/dist/dkms-guard_$(VERSION).dsc" "$(CURDIR)/dist/chroot" $(DEB_ARCHS)

# lintian, and man's own check of the page as installed (width 80, stricter
# than lintian's 120).
lint-deb:
	lintian --fail-on error,warning --info dist/*.deb
	for d in dist/*.deb; do \
		w=$$(dpkg-deb --fsys-tarfile "$$d" | tar -xOf - ./usr/share/man/man8/dkms-guard.8.gz | gunzip | \
			MANWIDTH=80 man --warnings -l - 2>&1 >/dev/null); \
		if [ -n "$$w" ]; then echo "$$d: dkms-guard(8): $$w" >&2; exit 1; fi; \
	done

install: $(if $(BINARY),docs,build)
ifeq ($(DESTDIR),)
	# The package's own preinst: the diversion, before our shim takes the path.
	sh debian/dkms-guard.preinst install
endif
	install -d "$(DESTDIR)$(SBINDIR)"
	install -m 0755 "$(if $(BINARY),$(BINARY),dkms-guard)" "$(DESTDIR)$(SBINDIR)/dkms-guard"
	for f in $(SCRIPTS); do \
		install -d "$(DESTDIR)$$(dirname $${f#*:})" && \
		sed 's|@SBINDIR@|$(SBINDIR)|g' "$${f%%:*}" >"$(DESTDIR)$${f#*:}" && chmod 0755 "$(DESTDIR)$${f#*:}"; \
	done
	for f in $(CONFFILES); do \
		install -d "$(DESTDIR)$$(dirname $${f#*:})" && \
		if [ -z "$(DESTDIR)" ] && [ "$${f#*:}" = /etc/default/dkms-guard ] && [ -e "$${f#*:}" ]; then \
			echo "N: kept the settings in $${f#*:}" >&2; continue; fi && \
		sed 's|@SBINDIR@|$(SBINDIR)|g' "$${f%%:*}" >"$(DESTDIR)$${f#*:}" && chmod 0644 "$(DESTDIR)$${f#*:}"; \
	done
	for f in $(DOCS); do \
		install -D -m 0644 "$${f%%:*}" "$(DESTDIR)$${f#*:}"; \
	done

uninstall:
ifeq ($(DESTDIR),)
	sh debian/dkms-guard.prerm remove
endif
	rm -f "$(DESTDIR)$(SBINDIR)/dkms-guard"
	for f in $(SCRIPTS) $(CONFFILES) $(DOCS); do rm -f "$(DESTDIR)$${f#*:}"; done
	rmdir "$(DESTDIR)$(PREFIX)/share/doc/dkms-guard" 2>/dev/null || true
ifeq ($(DESTDIR),)
	# The package's own postrm: dkms's autoinstaller back in its place.
	sh debian/dkms-guard.postrm remove
	@echo "N: state in /var/lib/dkms-guard and logs in /var/log/dkms-guard were kept" >&2
endif

# dh_auto_clean runs this before each architecture's build: dist/ stays.
clean:
	rm -rf dkms-guard build
