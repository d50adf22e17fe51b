# glupy: build, install and test. Run as root on Debian 12.
#   make deps      install the Debian packages it needs
#   make           build glupy.so
#   make install   install glupy.so into GlusterFS's translator directory
#                  and the glupy Python package where Debian's python3 finds it
#   make test      all of the above, then the whole test suite
#   make demo      a brick and a FUSE client with examples/helloworld.py

PYTHON      := /usr/bin/python3
export PYO3_PYTHON := $(PYTHON)
CARGO       ?= cargo
XLATORDIR    = $(shell glusterfs --print-xlatordir)
PY_SITE      = $(shell $(PYTHON) -c 'import site; print(site.getsitepackages()[0])')
SO          := target/release/libglupy.so
DEBS        := glusterfs-server glusterfs-client libglusterfs-dev liburcu-dev \
               libclang-dev python3-dev python3-pytest mypy fuse3 attr \
               python3-prometheus-client libjs-chart.js \
               chromium chromium-driver python3-selenium

.PHONY: all deps build install test test-rust test-python lint generate demo clean

all: build

deps:
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS); \
	fi

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

test: deps install lint test-rust test-python

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
