# bgpmux — the two front-door commands are `make demo` and `make test`.
# Both install what they need on a fresh Debian machine (run as root).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
APT_PACKAGES := bird2 frr gobgpd iproute2 iptables iputils-ping prometheus tcpdump procps python3-venv curl
STAMP_APT := $(VENV)/.apt-installed
STAMP_PIP := $(VENV)/.pip-installed
# GoBGP's API stubs, generated (gitignored) from Debian's .proto copies: scripts/gobgp_stubs.py
STAMP_GOBGP := bgpmux/engines/gobgp_api/__init__.py

.PHONY: all deps test lint unit interop demo bench fuzz soak hitless clean image image-base \
	image-test

all: test

$(STAMP_APT):
	@mkdir -p $(VENV)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

$(STAMP_PIP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

$(STAMP_GOBGP): $(STAMP_PIP) scripts/gobgp_stubs.py
	$(BIN)/python scripts/gobgp_stubs.py

deps: $(STAMP_APT) $(STAMP_PIP) $(STAMP_GOBGP)

# Test modules run in TEST_JOBS parallel workers, one module per worker at a time (each interop
# module builds its own namespaces, tagged by module name); most of their time is spent waiting
# on real daemons, so more workers than cores pays.
TEST_JOBS ?= 4
PYTEST_PARALLEL := -n $(TEST_JOBS) --dist loadfile

lint: deps
	$(BIN)/ruff check bgpmux lab tests bench scripts
	$(BIN)/ruff format --check bgpmux lab tests bench scripts
	$(BIN)/mypy bgpmux lab
	$(BIN)/python scripts/check_layers.py
	$(BIN)/python scripts/gen_stubs.py --check

unit: deps
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests/unit tests/integration

interop: deps
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests/interop

test: deps lint
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) tests

demo: deps
	$(BIN)/python -m lab.demo

# A million inputs through the codec and the export path (a few minutes on 2 cores); findings
# go to tests/fuzz/found/. FUZZ_ARGS, e.g. "--inputs 100000 --seed 7".
fuzz: deps
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

# bgpmux, BIRD and GoBGP as the mux, 10k/100k/1M IPv4 and 100k IPv6, 3 runs (see bench/README.md;
# needs root, about 7 minutes on 2 cores). Writes bench/results/latest.{md,json}.
bench: deps
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench

# An hour of churn split across the engines (not part of `make test`); SOAK_ARGS="--minutes 4"
# for a short trial. Writes bench/results/soak-latest.{md,json}; fails on RSS or fd growth.
soak: deps
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Pings every 20 ms through a rack while bgpmux restarts 10 times per engine (SIGTERM and SIGKILL
# alternately; a few minutes). Writes bench/results/hitless-latest.{md,json}; fails on any lost
# ping. HITLESS_ARGS, e.g. "--engines native --restarts 4", "--baseline bird", "--report-only".
hitless: deps
	$(BIN)/python -m bench.hitless $(HITLESS_ARGS)

# The image (README "The image"): Debian bookworm bases made by mmdebstrap from Debian's packages
# (image/base.sh), imported as local images and cached by a stamp, or by podman having them
# (`make image-base` to take Debian's updates); buildah builds the Dockerfile with --pull=never
# and --layers (an unchanged tree builds again from its cache), then removes the dangling
# images a rebuild leaves.
IMAGE ?= localhost/bgpmux:latest
IMAGE_DIR := build/image
IMAGE_BASE_BUILD := localhost/bgpmux-base-build:bookworm
IMAGE_BASE_RUNTIME := localhost/bgpmux-base-runtime:bookworm
# This machine's CA bundle, mounted into the build's RUN steps (not the image) for pip to trust
# a TLS-intercepting proxy on the way to PyPI
IMAGE_CA ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_APT := buildah podman mmdebstrap runc uidmap
STAMP_IMAGE_APT := $(IMAGE_DIR)/.apt-installed
STAMP_IMAGE_BASE := $(IMAGE_DIR)/.base
# The shipped config (deploy/base's ConfigMap is generated from it) that image-test checks
IMAGE_CONFIG ?= deploy/base/bgpmux.yaml

$(STAMP_IMAGE_APT):
	@mkdir -p $(IMAGE_DIR)
	@missing=""; for p in $(IMAGE_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

# With no stamp (a fresh clone) and both bases already in podman, the stamp is only made: a
# changed image/base.sh, or `make image-base` (IMAGE_BASE_FORCE=1), remakes them.
$(STAMP_IMAGE_BASE): image/base.sh $(STAMP_IMAGE_APT)
	@if [ ! -e $@ ] && [ -z "$(IMAGE_BASE_FORCE)" ] && podman image exists $(IMAGE_BASE_BUILD) \
	    && podman image exists $(IMAGE_BASE_RUNTIME); then \
	  echo "image: using the bases already in podman (make image-base remakes them)"; \
	else image/base.sh $(IMAGE_DIR) $(IMAGE_BASE_BUILD) $(IMAGE_BASE_RUNTIME); fi
	@touch $@

image-base:
	rm -f $(STAMP_IMAGE_BASE)
	$(MAKE) IMAGE_BASE_FORCE=1 $(STAMP_IMAGE_BASE)

# The builder stage is tagged too ($(IMAGE_BUILDER)), so that `podman image prune` (dangling
# images only: the previous build's, left untagged) keeps its layer cache.
IMAGE_BUILDER ?= localhost/bgpmux-builder:latest
IMAGE_BUD = buildah bud --quiet --isolation=chroot --pull=never --layers \
	  $(if $(wildcard $(IMAGE_CA)),--volume $(IMAGE_CA):/run/host-ca.crt:ro) -f Dockerfile

image: $(STAMP_IMAGE_BASE)
	@podman image exists $(IMAGE_BASE_BUILD) && podman image exists $(IMAGE_BASE_RUNTIME) || \
	  image/base.sh $(IMAGE_DIR) $(IMAGE_BASE_BUILD) $(IMAGE_BASE_RUNTIME)
	$(IMAGE_BUD) --target builder -t $(IMAGE_BUILDER) .
	$(IMAGE_BUD) -t $(IMAGE) .
	podman image prune -f
	@podman images $(IMAGE)

# Runs the image with podman: version, check-config on $(IMAGE_CONFIG), not root, a read-only
# root filesystem, and `bgpmux run` of it in a network namespace reaching
# Established with a BIRD ToR (exabgp, native and gobgp engines); prints the idle memory. Not
# part of `make test` (tests/image/).
image-test: image deps
	@test -f "$(IMAGE_CONFIG)" || { echo "image-test: $(IMAGE_CONFIG) not found: set IMAGE_CONFIG"; exit 1; }
	$(BIN)/python -m tests.image --image $(IMAGE) --config $(IMAGE_CONFIG)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache bgpmux/engines/gobgp_api $(IMAGE_DIR)
