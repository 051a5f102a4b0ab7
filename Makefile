# Two commands for a fresh machine:  `make book`  and  `make test`.
# Each sets up everything it needs (system packages, a virtual environment, the CPU build of
# PyTorch first, then the book's requirements) and is safe to run again: finished steps are skipped.

PYTHON        ?= python3
VENV          ?= .venv
PY            := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Debian packages: real Fashion-MNIST for offline machines.
APT_PACKAGES  ?= dataset-fashion-mnist
STAMP         := $(VENV)/.installed

.PHONY: book test setup system clean help

help:
	@echo "make book   set everything up and build the book into _build/html"
	@echo "make test   set everything up and run the test suite"

## System packages (skipped when present, or when apt-get is not available)
system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: cannot install$$missing (no apt-get); the data layer will download instead"; exit 0; fi; \
	SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	echo "installing Debian packages:$$missing"; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

## Python environment: the CPU torch wheel first, so nothing later pulls a CUDA build.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

setup: system $(STAMP)

test: setup
	$(PY) -m pytest

clean:
	rm -rf _build
