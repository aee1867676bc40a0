# GPT Notes: the two commands (see README.md). Each creates .venv and installs what it needs.
#   make docs   build the site and serve it on http://127.0.0.1:8000
#   make test   run every test (snippets, doctests, unit tests, copy-paste, strict build, browser)
#   make release-check   build the sdist and the wheel and check them, as the release workflow does

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

.PHONY: docs test build venv clean release-check

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

docs: $(STAMP)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

build: $(STAMP)
	$(BIN)/mkdocs build --strict

test: $(STAMP)
	scripts/ensure-chromium
	$(BIN)/python -m pytest -n auto

release-check: $(STAMP)
	$(BIN)/python scripts/release-check --no-isolation --constraints constraints.txt

clean:
	rm -rf $(VENV) .cache site
