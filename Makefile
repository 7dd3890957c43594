# SPDX-License-Identifier: GPL-2.0
#
# mpmc: build and test.
#
#   make [all]        the module (mpmc.ko, here at the top, where kbuild
#                     puts it), libmpmc (build/lib/), mpmcstat
#                     (build/mpmcstat/), the selftests (build/selftests/)
#                     and the examples (build/examples/)
#   make module       the module only, against KVER's kbuild tree
#   make lib          libmpmc only (lib/Makefile, into build/lib)
#   make mpmcstat     the mpmcstat(8) tool only (tools/mpmcstat/Makefile)
#   make selftests    the selftests only
#   make examples     the examples only (examples/Makefile)
#   make bindings     the language bindings' tests, for the guest:
#                     build/bindings/tests/python.sh (bindings/python,
#                     pytest) and rust.sh (bindings/rust: cargo test --no-run,
#                     offline, Debian's crates); make check runs them in
#                     the guest with --hostfs (bindings/run-tests.sh)
#   make demo         the main job: deps + build, then the epoll worker
#                     pool over mpmc, a pipe and a SEQPACKET socket pair in
#                     the guest, with its tables, then the cross-language
#                     demo (bindings/demo/xlang.py: a Python asyncio
#                     producer, a Rust tokio and a C epoll consumer on one
#                     channel, exactly once) (tools/demo)
#   make deb          the Debian packages (debian/: mpmc-dkms, libmpmc1,
#                     libmpmc-dev, python3-mpmc) with dpkg-buildpackage,
#                     offline, into build/deb/; lintian must report no
#                     error or warning; then they are unpacked into a
#                     scratch root where examples/hello.c is compiled
#                     against libmpmc-dev's pkg-config file (tools/deb)
#   make install      libmpmc, its headers, pkg-config file and man pages,
#                     and mpmcstat with mpmcstat(8) (PREFIX=/usr/local
#                     DESTDIR=)
#   make deps         install the Debian packages all this needs
#   make check        deps + all + libmpmc's host checks, then boot the
#                     Debian 6.1 kernel in QEMU (tools/vm-run), load the
#                     module and run every selftest and every example
#                     (selftests/run-all.sh). Prints the tests'
#                     TAP output and ends with "N passed, N failed, N
#                     skipped"; exits non-zero on any failure, including
#                     a kernel warning or taint seen by the VM runner.
#                     Logs: build/check.log (console), .dmesg (kernel),
#                     .out (the tests' output alone).
#   make check-debug  the selftests on the debug kernels (LANES, default
#                     "debug kcsan": KASAN+lockdep+UBSAN+kmemleak+fault
#                     injection, then KCSAN), built once from
#                     linux-source-6.1 and cached in
#                     /var/cache/mpmc/kernels (tools/build-kernel,
#                     tools/debug-lane); `make check` runs it after the
#                     Debian kernel unless CHECK_DEBUG=0. Logs:
#                     build/check-LANE.log (+ .dmesg)
#   make check-host   the same on a real host running a 6.1-compatible
#                     kernel that can load modules (as root): builds
#                     against `uname -r`, insmods, runs the selftests,
#                     rmmods
#                     (check, check-vm, check-debug and check-host are
#                     tools/check all|vm|debug|host)
#   make mutants      the mutation check (tools/mutants/run): build the
#                     module once per deliberate bug in tools/mutants/
#                     (MUTANTS="a b" for some), boot each in QEMU and run
#                     the selftests that must catch it; fails when one
#                     survives. Not part of make check. Logs:
#                     build/mutants/NAME/
#   make checkpatch   scripts/checkpatch.pl --strict on kmod/ and uapi/
#   make sparse       the module through sparse (C=2, -D__CHECK_ENDIAN__)
#   make w1           the module with W=1 -Werror
#   make lint         checkpatch + sparse + w1
#   make clean
#
# Variables: KVER (default: the newest installed Debian
# linux-headers-6.1*-amd64), KDIR (its kbuild tree), VM_TIMEOUT (seconds
# for the whole guest run), TEST_TIMEOUT (seconds per test program),
# VM_ARGS (more tools/vm-run options, e.g. VM_ARGS="--smp 4"), TESTS
# (run only these test programs, by name).
#
# checkpatch.pl and the kselftest harness are not kept here: they are
# extracted from Debian's linux-source-6.1 tarball into build/ when needed.

TOP := $(CURDIR)
BUILD := $(TOP)/build
LINUX_SOURCE ?= /usr/src/linux-source-6.1.tar.xz

# Recursively expanded on purpose: `make check` installs the headers
# first, then looks for them.
KVER ?= $(shell ls -d /usr/src/linux-headers-6.1*-amd64 2>/dev/null | \
		sed 's|^/usr/src/linux-headers-||' | sort -V | tail -n 1)
KDIR ?= /lib/modules/$(KVER)/build
KBUILD = $(MAKE) -C $(KDIR) M=$(TOP)

VM_TIMEOUT ?= 1200
TEST_TIMEOUT ?= 600
VM_ARGS ?=
LANES ?= debug kcsan
LANE_TIMEOUT ?= 2400
CHECK_DEBUG ?= 1
TESTS ?=

CHECKPATCH := $(BUILD)/scripts/checkpatch.pl
LINT_FILES := $(wildcard kmod/*.[ch] uapi/linux/*.h)

PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all module lib lib-check mpmcstat selftests examples bindings deb demo install deps check \
	check-vm check-debug check-host mutants print-kdir checkpatch sparse w1 lint clean kdir

all: module lib mpmcstat selftests examples bindings

kdir:
	@if [ -z "$(KVER)" ] || [ ! -d "$(KDIR)" ]; then \
		echo "no kbuild tree for KVER='$(KVER)' at $(KDIR): run 'make deps' (linux-headers-amd64)" >&2; \
		exit 1; \
	fi

# The kbuild tree in use, for scripts: "KVER KDIR".
print-kdir: kdir
	@echo "$(KVER) $(KDIR)"

module: kdir
	$(KBUILD) modules

lib:
	$(MAKE) -C lib O=$(BUILD)/lib

lib-check: lib
	$(MAKE) -C lib O=$(BUILD)/lib check
	$(MAKE) -C tools/mpmcstat O=$(BUILD)/mpmcstat check

mpmcstat:
	$(MAKE) -C tools/mpmcstat O=$(BUILD)/mpmcstat

# The mpmcstat selftest runs the tool as bin/mpmcstat beside it: every
# guest that gets build/selftests gets it (run-all.sh runs only the
# regular files of the directory, not bin/).
selftests: lib mpmcstat
	$(MAKE) -C selftests OUTPUT=$(BUILD)/selftests KSFT=$(BUILD)/ksft \
		LINUX_SOURCE=$(LINUX_SOURCE)
	install -D -m 0755 $(BUILD)/mpmcstat/mpmcstat $(BUILD)/selftests/bin/mpmcstat

# The examples run with the selftests: run-examples.sh prints one TAP
# result per example, so run-all.sh counts it like a test program.
examples: lib selftests
	$(MAKE) -C examples O=$(BUILD)/examples
	install -m 0755 examples/run-examples.sh $(BUILD)/selftests/examples.sh

# The bindings' test scripts for the guest (bindings/run-tests.sh, with
# this tree's path in it: the guest sees the host's files at their own
# paths through tools/vm-run --hostfs).
# Rust: Debian's cargo and rustc (/usr/bin first: a rustup toolchain in
# PATH would not be Debian's), offline from Debian's crates
# (bindings/rust/.cargo/config.toml), with a CARGO_HOME of our own. Host
# side: clippy -D warnings, then cargo test (unit tests, the ABI test
# against uapi/linux/mpmc.h, the doctests; the device tests are ignored
# here), then the test binaries and examples are listed for the guest.
CARGO_ENV = PATH=/usr/bin:/bin:$$PATH CARGO_HOME=$(BUILD)/cargo-home \
	CARGO_TARGET_DIR=$(BUILD)/rust RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
CARGO = cd bindings/rust && $(CARGO_ENV) /usr/bin/cargo

# The examples that run without arguments (xlang_consumer is the demo's).
RUST_EXAMPLES_RUN := hello tokio_hello

bindings: lib
	@mkdir -p $(BUILD)/bindings/tests
	for l in python rust; do \
		sed 's|@TOP@|$(TOP)|' bindings/run-tests.sh >$(BUILD)/bindings/tests/$$l.sh && \
		chmod 0755 $(BUILD)/bindings/tests/$$l.sh || exit 1; \
	done
	$(CARGO) clippy --all-targets -q -- -D warnings
	$(CARGO) test -q
	$(CARGO) build -q --examples
	$(CARGO) test -q --no-run --message-format=json | \
		/usr/bin/python3 -c 'import json, sys; \
		[print("test", a["executable"]) for a in map(json.loads, sys.stdin) \
		 if a.get("reason") == "compiler-artifact" and a.get("executable") and a["profile"]["test"]]' \
		>$(BUILD)/bindings/rust-tests.tmp
	for e in $(RUST_EXAMPLES_RUN); do \
		echo "example $(BUILD)/rust/debug/examples/$$e"; \
	done >>$(BUILD)/bindings/rust-tests.tmp
	mv $(BUILD)/bindings/rust-tests.tmp $(BUILD)/bindings/rust-tests
	$(CC) -O2 -g -Wall -Wextra -I$(TOP)/lib/include -I$(TOP)/uapi \
		-o $(BUILD)/bindings/c_consumer bindings/demo/c_consumer.c $(BUILD)/lib/libmpmc.a

demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory module examples bindings
	MPMC_KO=$(TOP)/mpmc.ko EXAMPLES=$(BUILD)/examples tools/demo

install: lib mpmcstat
	$(MAKE) -C lib O=$(BUILD)/lib install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)
	$(MAKE) -C tools/mpmcstat O=$(BUILD)/mpmcstat install PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

deps:
	@tools/install-deps

# The packaging tools are needed here only.
deb:
	@tools/install-deps debhelper dh-dkms dh-python lintian dpkg-dev pkg-config
	tools/deb

# The check recipes are tools/check's; it reads these variables (VM_ARGS
# and TESTS as the shell reads them). KVER only for check-vm: `make check`
# installs the headers first, and its sub-makes look for them then.
sq = '$(subst ','\'',$(1))'
CHECK = MAKE=$(call sq,$(MAKE)) VM_TIMEOUT=$(call sq,$(VM_TIMEOUT)) \
	TEST_TIMEOUT=$(call sq,$(TEST_TIMEOUT)) VM_ARGS=$(call sq,$(VM_ARGS)) \
	TESTS=$(call sq,$(TESTS)) LANES=$(call sq,$(LANES)) \
	LANE_TIMEOUT=$(call sq,$(LANE_TIMEOUT)) CHECK_DEBUG=$(call sq,$(CHECK_DEBUG)) \
	tools/check

check:
	@$(CHECK) all

# The selftests on each debug kernel of LANES (tools/debug-lane): the
# kernels are built on first use (about 15-30 min each on 2 cores) and
# cached by the hash of their inputs.
check-debug:
	@$(CHECK) debug

check-vm:
	@KVER=$(call sq,$(KVER)) $(CHECK) vm

# On a real host that can load modules; needs root.
check-host:
	@$(CHECK) host

# The mutation check: every tools/mutants/NAME.patch (or MUTANTS) must
# make its selftests fail. One guest run per mutant, after one of the
# unpatched module.
MUTANTS ?=
mutants: kdir selftests
	@KVER=$(KVER) KDIR=$(KDIR) tools/mutants/run $(MUTANTS)

$(CHECKPATCH):
	@test -r $(LINUX_SOURCE) || { echo "$(LINUX_SOURCE) missing: run make deps" >&2; exit 1; }
	@echo "  EXTRACT checkpatch.pl from $(LINUX_SOURCE)"
	@rm -rf $(BUILD)/scripts.tmp && mkdir -p $(BUILD)/scripts.tmp
	@tar -xJf $(LINUX_SOURCE) --strip-components=2 -C $(BUILD)/scripts.tmp \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
	@rm -rf $(BUILD)/scripts && mv $(BUILD)/scripts.tmp $(BUILD)/scripts

checkpatch: $(CHECKPATCH)
	perl $(CHECKPATCH) --strict --no-tree --show-types --terse -f $(LINT_FILES)

# sparse prints warnings but does not fail the build: fail on any
# warning or error about our own files.
sparse: kdir
	@command -v sparse >/dev/null || { echo "sparse missing: run make deps" >&2; exit 1; }
	@mkdir -p $(BUILD); \
	echo "$(KBUILD) C=2 CF=-D__CHECK_ENDIAN__ modules"; \
	$(KBUILD) C=2 CF=-D__CHECK_ENDIAN__ modules >$(BUILD)/sparse.log 2>&1; rc=$$?; \
	cat $(BUILD)/sparse.log; \
	[ $$rc = 0 ] || exit $$rc; \
	if grep -E '^(/.*/)?(kmod|uapi)/[^:]*:[0-9]+:[0-9]+: (warning|error):' $(BUILD)/sparse.log >/dev/null; then \
		echo "sparse: warnings in our files"; exit 1; \
	fi

w1: kdir
	$(KBUILD) W=1 KCFLAGS=-Werror modules

lint: checkpatch sparse w1

clean:
	@if [ -n "$(KVER)" ] && [ -d "$(KDIR)" ]; then $(KBUILD) clean; fi
	$(MAKE) -C selftests clean OUTPUT=$(BUILD)/selftests
	rm -rf $(BUILD)

# Benchmarks against pipes, sockets and mqueue (tools/run-bench): builds
# the module and tools/mpmc-bench, boots a guest for the quick matrix and
# the target cells in a child memory cgroup, a second one for the target
# cells on a CPU without erms/fsrm, and writes bench/results/ (CSVs, chart,
# summary). BENCH_ARGS for more, e.g. BENCH_ARGS=--full or
# BENCH_ARGS="--passes root -- -g mn,batch -t mpmc,pipe".
.PHONY: bench
bench:
	tools/run-bench --log $(BUILD)/bench/vm-run.log $(BENCH_ARGS)

# ---- Host install: load/unload, DKMS, udev ----------------------------------
#
# For a host that runs a kernel the module supports, as root:
#   make load          insmod ./mpmc.ko (build it first: make module) with
#                      MODPARAMS, e.g. MODPARAMS="max_msg_size=16384";
#                      the parameters are in modprobe.d/mpmc.conf.example
#   make unload        rmmod mpmc (refused while a channel is open)
#   make dkms-build    copy the module's sources to /usr/src/mpmc-VERSION,
#                      then dkms add and build them for DKMS_KVER (default:
#                      the running kernel); replaces an earlier add of the
#                      same version
#   make dkms-install  dkms-build, then dkms install: mpmc.ko goes to
#                      /lib/modules/DKMS_KVER/updates/dkms, `modprobe mpmc`
#                      loads it with /etc/modprobe.d/mpmc.conf, and DKMS
#                      rebuilds it for every kernel installed later
#   make dkms-remove   dkms remove mpmc/VERSION from every kernel, and
#                      /usr/src/mpmc-VERSION
#   make install-udev  udev/60-mpmc.rules into UDEV_RULES_DIR
#                      (/etc/udev/rules.d), then reload udev's rules
# The version is defined once, in VERSION (dkms.conf reads it too).

MPMC_VERSION := $(shell cat $(TOP)/VERSION 2>/dev/null)
MODPARAMS ?=
DKMS ?= dkms
DKMS_KVER ?= $(shell uname -r)
DKMS_SRC := /usr/src/mpmc-$(MPMC_VERSION)
# What DKMS builds from: kbuild's Kbuild, the module and its ABI header.
DKMS_FILES := Kbuild VERSION dkms.conf uapi/linux/mpmc.h \
	$(sort $(wildcard kmod/*.c kmod/*.h))
UDEV_RULES_DIR ?= /etc/udev/rules.d
NEED_ROOT = @[ "$$(id -u)" = 0 ] || { echo "make $@: needs root" >&2; exit 1; }

.PHONY: load unload dkms-build dkms-install dkms-remove install-udev

load:
	$(NEED_ROOT)
	@[ -f $(TOP)/mpmc.ko ] || { echo "make load: no mpmc.ko, run 'make module' first" >&2; exit 1; }
	insmod $(TOP)/mpmc.ko $(MODPARAMS)

unload:
	$(NEED_ROOT)
	rmmod mpmc

dkms-build:
	$(NEED_ROOT)
	@command -v $(DKMS) >/dev/null || { echo "make $@: no dkms (apt-get install dkms)" >&2; exit 1; }
	@[ -n "$(MPMC_VERSION)" ] || { echo "make $@: no version in VERSION" >&2; exit 1; }
	@if [ -n "$$($(DKMS) status -m mpmc -v $(MPMC_VERSION))" ]; then \
		echo "$(DKMS) remove -m mpmc -v $(MPMC_VERSION) --all"; \
		$(DKMS) remove -m mpmc -v $(MPMC_VERSION) --all || exit 1; \
	fi
	rm -rf $(DKMS_SRC)
	mkdir -p $(DKMS_SRC)
	cd $(TOP) && cp --parents $(DKMS_FILES) $(DKMS_SRC)/
	$(DKMS) add -m mpmc -v $(MPMC_VERSION)
	$(DKMS) build -m mpmc -v $(MPMC_VERSION) -k $(DKMS_KVER)

dkms-install: dkms-build
	$(DKMS) install -m mpmc -v $(MPMC_VERSION) -k $(DKMS_KVER)

dkms-remove:
	$(NEED_ROOT)
	@if [ -n "$$($(DKMS) status -m mpmc -v $(MPMC_VERSION) 2>/dev/null)" ]; then \
		echo "$(DKMS) remove -m mpmc -v $(MPMC_VERSION) --all"; \
		$(DKMS) remove -m mpmc -v $(MPMC_VERSION) --all || exit 1; \
	fi
	rm -rf $(DKMS_SRC)

# With DESTDIR (packaging), only the file is installed.
install-udev:
	install -D -m 0644 $(TOP)/udev/60-mpmc.rules $(DESTDIR)$(UDEV_RULES_DIR)/60-mpmc.rules
	@if [ -z "$(DESTDIR)" ] && [ -S /run/udev/control ]; then \
		echo "udevadm control --reload-rules && udevadm trigger --sysname-match=mpmc"; \
		udevadm control --reload-rules && udevadm trigger --sysname-match=mpmc; \
	fi
