# GPT Notes: the two commands (see README.md). Each creates .venv and installs what it needs.
#   make docs   build the site and serve it on http://127.0.0.1:8000
#   make test   run every test (snippets, doctests, unit tests, copy-paste, strict build, browser)
#   make release-check   build the sdist and the wheel and check them, as the release workflow does

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# What the pages show that a program makes (snippet outputs, figures, tables, notebooks, the
# wheel), made before the build, in parallel: see sitetools/prebuild.py.
PREBUILD := $(BIN)/python -m sitetools.prebuild
# Material 9.8 prints a banner about its end of life and MkDocs 2.0 on every build; the
# README ("The toolchain") says why this project silences it and what it will switch to.
export NO_MKDOCS_2_WARNING := 1

.PHONY: docs test build venv clean release-check

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "GPT Notes needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1). Try: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# `python -m mkdocs` (not .venv/bin/mkdocs) runs from the repository's root, where the
# site's Markdown extension (sitetools.outputs, listed in mkdocs.yml) is importable.
docs: $(STAMP)
	$(PREBUILD)
	$(BIN)/python -m mkdocs serve --dev-addr 127.0.0.1:8000

build: $(STAMP)
	$(PREBUILD)
	$(BIN)/python -m mkdocs build --strict

test: $(STAMP)
	scripts/ensure-chromium
	$(PREBUILD)
	$(BIN)/python -m pytest -n auto --dist worksteal

release-check: $(STAMP)
	$(BIN)/python scripts/release-check --no-isolation --constraints constraints.txt

clean:
	rm -rf $(VENV) .cache site generated docs/figures docs/notebooks docs/wheels
