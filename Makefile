# Idempotent targets for a fresh machine: `make quickstart` (main job) and `make test` (whole suite).
# PyTorch is large: it is installed once into the machine's Python and the project venv sees it through
# --system-site-packages, so new clones and CI runs reuse it instead of reinstalling it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup system-deps test test-fast quickstart benchmarks clean-nodes constraints

setup: system-deps $(STAMP)

# Debian packages the suite and the report need (headless Chromium for the report screenshot test, chromium-driver
# for the workbench's Selenium tests; Maven and a JDK 21+ for the managed search nodes). Installed only when missing
# and only when we may (root).
system-deps:
	@missing=""; for cmd in chromium chromedriver mvn; do command -v $$cmd >/dev/null || missing="$$missing $$cmd"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    pkgs=$$(echo $$missing | sed 's/mvn/maven/; s/chromedriver/chromium-driver/'); apt-get update -qq && apt-get install -y -qq $$pkgs >/dev/null; \
	  else echo "missing system packages:$$missing (install them with your package manager)"; fi; fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install --quiet torch
	@test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Refresh constraints.txt from the working virtualenv (after changing dependencies and running the tests).
constraints:
	$(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(searchtune|torch|triton|nvidia-|cuda-)' > constraints.txt

# the import contracts (pyproject.toml [tool.importlinter], docs/architecture.md) first: seconds, and a broken
# layering is cheaper to see before a 15-minute suite than after it
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

test-fast: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow"

quickstart: setup
	$(VENV)/bin/searchtune quickstart

benchmarks: setup
	$(PY) benchmarks/run_all.py

clean-nodes:
	-$(VENV)/bin/searchtune es stop
