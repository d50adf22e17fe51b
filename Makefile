# glupy: build, install and test. Run as root on Debian 12.
#   make deps      install the Debian packages it needs
#   make           build glupy.so
#   make install   install glupy.so into GlusterFS's translator directory
#                  and the glupy Python package where Debian's python3 finds it
#   make test      all of the above, then the whole test suite
#   make test-asan after make install: the fault and value tests against an
#                  AddressSanitizer build of glupy.so (RELIABILITY.md)
#   make test-debian13  the whole suite again in a Debian 13 root
#                  (GlusterFS 11.1, Python 3.13; tools/debian13)
#   make test-bookworm-backports  the same in a Debian 12 root with GlusterFS
#                  11.1 from bookworm-backports (Python 3.11)
#   make demo      a brick and a FUSE client with examples/helloworld.py
#   make deb       glupy_<version>+gluster<GlusterFS version>_amd64.deb (in
#                  target/deb), checked by lintian
#   make test-deb  make deb, then install / enable / purge it in a copy of
#                  this system (tools/deb-test; part of make test)

PYTHON      := /usr/bin/python3
export PYO3_PYTHON := $(PYTHON)
CARGO       ?= cargo
XLATORDIR    = $(shell glusterfs --print-xlatordir)
PY_SITE      = $(shell $(PYTHON) -c 'import site; print(site.getsitepackages()[0])')
SO          := $(or $(CARGO_TARGET_DIR),target)/release/libglupy.so
# libssl-dev and uuid-dev: GlusterFS 11's glusterfs.h includes their headers,
# and libglusterfs-dev does not depend on them.
DEBS        := glusterfs-server glusterfs-client libglusterfs-dev liburcu-dev \
               libssl-dev uuid-dev libclang-dev python3-dev python3-pytest mypy fuse3 attr \
               python3-prometheus-client libjs-chart.js \
               chromium chromium-driver python3-selenium \
               dpkg-dev lintian xfsprogs

.PHONY: all deps print-debs build install test test-rust test-python lint generate demo clean

all: build

deps:
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS); \
	fi

print-debs:
	@echo $(DEBS)

build:
	$(CARGO) build --release

install: build install-admin
	install -d $(XLATORDIR)/features $(XLATORDIR)/user
	install -m 0755 $(SO) $(XLATORDIR)/features/glupy.so
	install -m 0755 $(SO) $(XLATORDIR)/user/glupy.so
	rm -rf $(PY_SITE)/glupy $(PY_SITE)/gluster/glupy
	install -d $(PY_SITE)/gluster
	cp -r python/glupy $(PY_SITE)/glupy
	@# gluster is a pkgutil namespace shared with Debian's glusterfs-common.
	if [ -d python/gluster/glupy ]; then cp -r python/gluster/glupy $(PY_SITE)/gluster/glupy; \
		install -m 0644 python/gluster/__init__.py $(PY_SITE)/gluster/__init__.py; fi
	find $(PY_SITE)/glupy $(PY_SITE)/gluster -name __pycache__ -prune -exec rm -rf {} +

# Administration: the glupy command and the glusterd volfile filter that puts
# glupy into client volfiles (docs/managed-volumes.md).
FILTERDIR    = $(shell dirname $(XLATORDIR))/filter
SBINDIR     ?= /usr/local/sbin
.PHONY: install-admin
install-admin:
	install -D -m 0755 bin/glupy $(SBINDIR)/glupy
	install -D -m 0755 filter/glupy-filter $(FILTERDIR)/glupy-filter

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

test-rust:
	$(CARGO) test --release

test-python:
	$(PYTHON) -m pytest -q tests

test: deps install lint test-rust test-python test-deb

# The Debian package (tools/make-deb: dpkg-shlibdeps, dpkg-gencontrol,
# dpkg-deb; debian/ holds its control template, copyright and maintainer
# scripts), for the GlusterFS whose headers glupy.so is built with.
DEB_DIR      = $(or $(CARGO_TARGET_DIR),target)/deb
.PHONY: deb test-deb
deb: build
	tools/make-deb
	lintian --fail-on error,warning $(DEB_DIR)/glupy_*_amd64.deb

test-deb: deb
	tools/deb-test $(DEB_DIR)/glupy_*_amd64.deb

# The same `make test` in a Debian 13 root made by debootstrap and cached in
# /var/cache/glupy-ci (GLUPY_CI_CACHE); builds into target/debian13.
.PHONY: test-debian13 test-bookworm-backports
test-debian13:
	tools/debian13 make test

test-bookworm-backports:
	GLUPY_DEBIAN_SUITE=bookworm-backports tools/debian13 make test

generate:
	GLUPY_REGENERATE=1 $(CARGO) test --release pystubs

demo: deps install
	$(PYTHON) examples/demo.py

clean:
	$(CARGO) clean

# Benchmarks (bench/, results in BENCHMARKS.md); not part of make test.
#   make bench                 full run (about an hour on 2 cores)
#   BENCH_QUICK=1 make bench   a short run (about 10 min)
#   BENCH_ONLY=passthrough,python,negative,datapath,memory,soak  some of them
BENCH_DRIVER := target/bench/gfbench
.PHONY: bench
$(BENCH_DRIVER): bench/gfbench.c
	install -d $(dir $@)
	$(CC) -O2 -Wall -Wextra -D_FILE_OFFSET_BITS=64 -o $@ $< -lgfapi -lpthread

bench: deps install $(BENCH_DRIVER)
	$(PYTHON) bench/run.py

# Reliability (RELIABILITY.md). Not part of `make test`: long-running.
#   make stress                 every scenario, STRESS_SECONDS (default 600) each
#   STRESS_SECONDS=60 make stress
#   STRESS_SCENARIOS=pool make stress   the three-server pool (stress/pool.py) alone
STRESS_SECONDS ?= 600
.PHONY: stress
stress: deps install
	@command -v fio >/dev/null && command -v ip >/dev/null && command -v nsenter >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio iproute2 util-linux)
	STRESS_SECONDS=$(STRESS_SECONDS) $(PYTHON) stress/run.py $(STRESS_SCENARIOS)

# 10 minutes of cargo-fuzz over the values a Python translator unwinds and
# winds, against a real brick (fuzz/, RELIABILITY.md). Needs a nightly
# toolchain (or RUSTC_BOOTSTRAP=1 with FUZZ_TOOLCHAIN=+stable).
FUZZ_SECONDS ?= 600
FUZZ_TOOLCHAIN ?= +nightly
.PHONY: fuzz
fuzz: deps install
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && ASAN_OPTIONS=detect_leaks=0 $(CARGO) $(FUZZ_TOOLCHAIN) fuzz run --fuzz-dir . -O reply_values -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=30

# AddressSanitizer (RELIABILITY.md, "AddressSanitizer"). glupy.so (Rust, with
# the stable toolchain's -Zsanitizer=address, allowed by RUSTC_BOOTSTRAP) and
# its C shim (GLUPY_SANITIZE) are built into target/asan; tools/asan-runtime
# makes the runtime from the same toolchain. pytest runs under tools/with-tree
# (the ASan glupy.so mounted over the installed one) with the runtime in
# LD_PRELOAD: it and every brick, FUSE client and gfapi process it starts have
# it first. Reports go to ASAN_REPORTS; tests/conftest.py fails the test
# during which one appeared, and the run fails if any is left.
# Needs a prior `make install` (make test does it); does not install.
# ASAN_TESTS: the fault and value tests (add more here; a test that starts a
# process with a fresh environment drops LD_PRELOAD and cannot load the
# ASan glupy.so).
ASAN_TESTS   ?= tests/test_faults.py tests/test_host.py tests/test_answers_and_buffers.py \
                tests/test_registration.py
ASAN_TARGET  := x86_64-unknown-linux-gnu
ASAN_DIR     := $(CURDIR)/target/asan
ASAN_SO      := $(ASAN_DIR)/$(ASAN_TARGET)/release/libglupy.so
ASAN_RUNTIME := $(ASAN_DIR)/libasan-rt.so
ASAN_REPORTS := $(ASAN_DIR)/reports
ASAN_SYMBOLIZER := /usr/lib/llvm-14/bin/llvm-symbolizer
# No leak checking: GlusterFS 10.3 frees little at exit. The first error
# ends the process (exit 1) after its report. GlusterFS's libraries have no
# frame pointers: the slow unwinder gives whole stacks for the free and the
# allocation of a block.
ASAN_RUN_OPTIONS := detect_leaks=0:halt_on_error=1:fast_unwind_on_malloc=0:log_path=$(ASAN_REPORTS)/asan
.PHONY: test-asan
test-asan: deps
	@[ -x $(ASAN_SYMBOLIZER) ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-14) || \
		echo "test-asan: no $(ASAN_SYMBOLIZER): reports will show addresses, not lines"
	@set -e; status=0; ASAN_TARGET=$(ASAN_TARGET) tools/asan-runtime $(ASAN_RUNTIME) || status=$$?; \
	if [ $$status = 3 ]; then echo "test-asan: SKIPPED: this Rust toolchain ships no ASan runtime"; exit 0; fi; \
	[ $$status = 0 ] || exit $$status; \
	RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" GLUPY_SANITIZE=address \
		$(CARGO) build --release --lib --target $(ASAN_TARGET) --target-dir $(ASAN_DIR); \
	rm -rf $(ASAN_REPORTS); mkdir -p $(ASAN_REPORTS); \
	status=0; GLUPY_SO=$(ASAN_SO) GLUPY_ASAN_REPORTS=$(ASAN_REPORTS) tools/with-tree \
		env LD_PRELOAD=$(ASAN_RUNTIME) ASAN_OPTIONS=$(ASAN_RUN_OPTIONS) \
		$$([ -x $(ASAN_SYMBOLIZER) ] && echo ASAN_SYMBOLIZER_PATH=$(ASAN_SYMBOLIZER)) \
		$(PYTHON) -m pytest -q $(ASAN_TESTS) || status=$$?; \
	if grep -l "ERROR: AddressSanitizer" $(ASAN_REPORTS)/* 2>/dev/null; then \
		head -n 60 $$(grep -l "ERROR: AddressSanitizer" $(ASAN_REPORTS)/*); \
		echo "test-asan: FAILED: AddressSanitizer reports in $(ASAN_REPORTS)"; exit 1; fi; \
	exit $$status
