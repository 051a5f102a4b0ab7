# Two commands for a fresh machine:  `make book`  and  `make test`.
# Each sets up everything it needs (system packages, a virtual environment, the CPU build of
# PyTorch first, then the book's requirements) and is safe to run again: finished steps are skipped.

PYTHON        ?= python3
VENV          ?= .venv
PY            := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Debian packages: real Fashion-MNIST for offline machines; Chromium and its driver for the browser
# test of the built book (tests/book/test_browser.py).
APT_PACKAGES  ?= dataset-fashion-mnist chromium chromium-driver
STAMP         := $(VENV)/.installed

.PHONY: book test unit setup system clean help student pdf

help:
	@echo "make book   set everything up and build the book into _build/html"
	@echo "make test   set everything up and run the test suite"
	@echo "make unit   the fast unit tests alone (tests/unit)"
	@echo "make mathjax  vendor MathJax from npm for offline math (part of make book)"
	@echo "make pdf      the printable edition: _build/pdf/vae-book.pdf (after make book; needs Chromium)"
	@echo "make student  regenerate the student notebooks in student/ (exercises without solutions)"

## System packages (skipped when present, or when apt-get is not available)
system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: cannot install$$missing (no apt-get): data will be downloaded instead, and the browser and PDF tests are skipped"; exit 0; fi; \
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

## Chainer 7 in a separate environment (it needs NumPy 1.x): the tests compare the helpers with
## Chainer's own gaussian_kl_divergence, bernoulli_nll and gaussian, values and gradients.
CHAINER_VENV  := .venv-chainer
$(CHAINER_VENV)/.installed:
	test -x $(CHAINER_VENV)/bin/python || $(PYTHON) -m venv $(CHAINER_VENV)
	$(CHAINER_VENV)/bin/python -m pip install -q "numpy<2" setuptools wheel
	$(CHAINER_VENV)/bin/python -m pip install -q --no-build-isolation chainer==7.8.1
	touch $@

test: setup $(CHAINER_VENV)/.installed mathjax
	VAE_LESSON_CHAINER_PYTHON=$(CHAINER_VENV)/bin/python $(PY) -m pytest

## The fast unit tests alone (tests/unit, about a minute): the package's functions and models.
unit: setup $(CHAINER_VENV)/.installed
	VAE_LESSON_CHAINER_PYTHON=$(CHAINER_VENV)/bin/python $(PY) -m pytest -m unit

## The book (Jupyter Book 1.x; the book root is the repository root, see _config.yml).
# Math is typeset by MathJax 3 vendored from npm (pinned in package.json/package-lock.json),
# so pages render with no network. Only the files tex-chtml.js loads at run time are copied
# into $(MATHJAX_EXTRA), which _config.yml lists in html_extra_path: its contents land at the
# root of _build/html, as _build/html/mathjax/.
NPM           ?= npm
NPM_STAMP     := node_modules/.vae-book-installed
MATHJAX_SRC   := node_modules/mathjax
MATHJAX_EXTRA := _build/vendor
MATHJAX_DIR   := $(MATHJAX_EXTRA)/mathjax
# tex-chtml.js bundles the TeX input and the CHTML output. It loads, relative to its own URL:
# TeX extensions on demand (input/tex/extensions), the CHTML web fonts (output/chtml/fonts),
# and, from its context menu, the SVG renderer (output/svg*), the menu and accessibility
# components (ui, a11y) and the speech rule engine (sre). tex-chtml.js is copied last: it
# marks a complete copy.
MATHJAX_FILES := LICENSE es5/input/tex/extensions es5/output es5/ui es5/a11y es5/sre es5/tex-chtml.js

.PHONY: mathjax

# npm ci (or npm install without a lock file) only when package*.json changed.
$(NPM_STAMP): package.json $(wildcard package-lock.json)
	@command -v $(NPM) >/dev/null 2>&1 || { \
	  echo "error: npm not found; install Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	if [ -f package-lock.json ]; then $(NPM) ci --no-audit --no-fund; \
	else $(NPM) install --no-audit --no-fund; fi
	touch $@

$(MATHJAX_DIR)/tex-chtml.js: $(NPM_STAMP)
	rm -rf $(MATHJAX_DIR)
	mkdir -p $(MATHJAX_DIR)
	for f in $(MATHJAX_FILES); do \
	  dest=$(MATHJAX_DIR)/$${f#es5/}; mkdir -p "$$(dirname "$$dest")"; \
	  cp -R $(MATHJAX_SRC)/$$f "$$dest" || exit 1; done

mathjax: $(MATHJAX_DIR)/tex-chtml.js

# Notebooks are executed first, two at a time with one thread each, into jupyter-book's cache
# (tools/execute_notebooks.py: it also re-executes everything when vae_lesson changed, and stops
# naming the notebook and cell when one fails); the build then renders from the cache. Last, the
# reference numbers the chapters recorded are checked against tests/expected_reference_numbers.json
# (tools/reference_numbers.py): a model whose numbers moved beyond the tolerance fails the build
# until the table is updated with the reason. Before that, the trained models the chapters used are
# copied next to the HTML, in _build/html/weights/ with a manifest of SHA-256 sums
# (tools/publish_weights.py): published with the book, vl.use_published_weights() loads them.
JOBS          ?= 2
book: setup mathjax
	$(PY) tools/execute_notebooks.py --jobs $(JOBS)
	VAE_LESSON_BOOK_BUILD=1 $(VENV)/bin/jupyter-book build . -W --keep-going
	$(PY) tools/publish_weights.py --build _build
	@echo "The book is in $(CURDIR)/_build/html/ (open _build/html/index.html)"
	$(PY) tools/reference_numbers.py check

## The printable edition: every page of the built book printed by headless Chromium into one PDF,
## and each PDF page rendered to PNG in _build/pdf/pages for a look.
pdf: book
	$(PY) tools/make_pdf.py --preview _build/pdf/pages

## Student notebooks: the chapters without their solutions, an answer cell per exercise (student/).
student: setup
	$(PY) tools/make_student_notebooks.py

clean:
	rm -rf _build
