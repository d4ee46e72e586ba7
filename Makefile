# dkms-guard. Thin on purpose: the logic is in Go and tested there.
#
#   make build            build ./dkms-guard
#   make test             the test command (README): unit tests + testscript suites
#   make e2e              both end-to-end suites (root, network to the mirror):
#   make e2e-apt            real apt, dpkg and dkms in a Debian chroot
#   make e2e-boot           a real disk image booted under QEMU (boot safety)
#   make install          install to $(DESTDIR)$(PREFIX) and set up the dpkg-divert
#   make uninstall        undo install, restoring dkms's own autoinstaller

PREFIX  ?= /usr
SBINDIR ?= $(PREFIX)/sbin
DESTDIR ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
BINARY  ?=

AUTOINSTALLER := /usr/lib/dkms/dkms_autoinstaller
DIVERTED      := $(AUTOINSTALLER).distrib
# dpkg-divert runs only against a root that has a dpkg database (the live
# system or a chroot), not against a packaging staging directory.
DPKG_ROOT_OK   = $(wildcard $(DESTDIR)/var/lib/dpkg/status)
DIVERT         = dpkg-divert --root "$(if $(DESTDIR),$(DESTDIR),/)" --package dkms-guard --rename

# The hook scripts quote it, but apt.conf cannot: apt keys the protocol
# version on the first word of the hook command, which must be this path.
ifneq ($(words $(SBINDIR)),1)
$(error SBINDIR "$(SBINDIR)" must be one word: apt's Pre-Install-Pkgs hook names it unquoted)
endif

.PHONY: all build test e2e e2e-apt e2e-boot install uninstall clean

all: build

build:
	$(GO) build -trimpath -tags urfave_cli_no_docs -ldflags "-X main.version=$(VERSION)" -o dkms-guard ./cmd/dkms-guard

test:
	$(GO) test -race -count=1 ./...

e2e: e2e-apt e2e-boot

e2e-apt: build
	testdata/e2e/run.sh "$(CURDIR)/dkms-guard"

e2e-boot: build
	testdata/e2e/boot.sh "$(CURDIR)/dkms-guard"

install: $(if $(BINARY),,build)
	install -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)/etc/kernel/postinst.d" "$(DESTDIR)/etc/kernel/prerm.d" \
		"$(DESTDIR)/etc/apt/apt.conf.d" "$(DESTDIR)/etc/default" "$(DESTDIR)/usr/lib/dkms" "$(DESTDIR)/usr/lib/dkms-guard"
	test -e "$(DESTDIR)/etc/default/dkms-guard" || install -m 0644 default/dkms-guard "$(DESTDIR)/etc/default/dkms-guard"
	install -m 0755 "$(if $(BINARY),$(BINARY),dkms-guard)" "$(DESTDIR)$(SBINDIR)/dkms-guard"
	sed 's|@SBINDIR@|$(SBINDIR)|g' kernel-postinst.d/dkms-guard > "$(DESTDIR)/etc/kernel/postinst.d/dkms-guard"
	sed 's|@SBINDIR@|$(SBINDIR)|g' hooks/kernel-prerm > "$(DESTDIR)/etc/kernel/prerm.d/dkms-guard"
	sed 's|@SBINDIR@|$(SBINDIR)|g' hooks/dkms_autoinstaller > "$(DESTDIR)/usr/lib/dkms-guard/dkms_autoinstaller"
	sed 's|@SBINDIR@|$(SBINDIR)|g' apt.conf.d/80dkms-guard > "$(DESTDIR)/etc/apt/apt.conf.d/80dkms-guard"
	chmod 0755 "$(DESTDIR)/etc/kernel/postinst.d/dkms-guard" "$(DESTDIR)/etc/kernel/prerm.d/dkms-guard" \
		"$(DESTDIR)/usr/lib/dkms-guard/dkms_autoinstaller"
	chmod 0644 "$(DESTDIR)/etc/apt/apt.conf.d/80dkms-guard"
ifneq ($(DPKG_ROOT_OK),)
	$(DIVERT) --divert $(DIVERTED) --add $(AUTOINSTALLER)
	install -m 0755 "$(DESTDIR)/usr/lib/dkms-guard/dkms_autoinstaller" "$(DESTDIR)$(AUTOINSTALLER)"
else
	@echo "N: no dpkg database under '$(DESTDIR)': not diverting $(AUTOINSTALLER); run" >&2
	@echo "N:   dpkg-divert --package dkms-guard --rename --divert $(DIVERTED) --add $(AUTOINSTALLER)" >&2
	@echo "N: and install /usr/lib/dkms-guard/dkms_autoinstaller there (a package's postinst does this)" >&2
endif

# The boot pin goes with dkms-guard. unpin runs update-grub, so in a
# DESTDIR it must run inside it (--root is a prefix, not a chroot).
uninstall:
	if [ -x "$(DESTDIR)$(SBINDIR)/dkms-guard" ]; then \
		$(if $(DESTDIR),chroot "$(DESTDIR)") "$(SBINDIR)/dkms-guard" unpin || true; \
	fi
ifneq ($(DPKG_ROOT_OK),)
	if dpkg-divert --root "$(if $(DESTDIR),$(DESTDIR),/)" --list $(AUTOINSTALLER) | grep -q 'by dkms-guard'; then \
		rm -f "$(DESTDIR)$(AUTOINSTALLER)" && \
		$(DIVERT) --divert $(DIVERTED) --remove $(AUTOINSTALLER); \
	fi
endif
	rm -f "$(DESTDIR)$(SBINDIR)/dkms-guard" "$(DESTDIR)/etc/kernel/postinst.d/dkms-guard" \
		"$(DESTDIR)/etc/kernel/prerm.d/dkms-guard" "$(DESTDIR)/etc/apt/apt.conf.d/80dkms-guard" \
		"$(DESTDIR)/usr/lib/dkms-guard/dkms_autoinstaller"
	rmdir "$(DESTDIR)/usr/lib/dkms-guard" 2>/dev/null || true
	@echo "N: state in /var/lib/dkms-guard, logs in /var/log/dkms-guard and /etc/default/dkms-guard were kept" >&2

clean:
	rm -f dkms-guard
