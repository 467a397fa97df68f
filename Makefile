# Two commands for a newcomer: `make demo` and `make test`. Both create .venv and install everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install system-deps clean dashboard browser-deps

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# torch first: 2.13.0 is the CPU build on this machine's disk; a GPU user's existing build is kept.
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	@$(BIN)/python -c "import open3d" || { echo "open3d failed to import: see the message above"; exit 1; }
	@touch $(STAMP)

# System libraries the Python packages need: libusb-1.0-0 for open3d.
system-deps:
	@if ! ldconfig -p | grep -q 'libusb-1.0.so.0'; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null; \
	  else \
	    echo "open3d needs the system library libusb-1.0-0; install it with: sudo apt-get install libusb-1.0-0"; exit 1; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/mmdiff demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

# A local Prefect server (SQLite under ~/.prefect, bound to 127.0.0.1:4200) plus every served deployment.
# PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://... switches the server to PostgreSQL.
dashboard: $(STAMP)
	$(BIN)/mmdiff dashboard

# Debian's chromium + chromium-driver for the headless dashboard test (tests/flows/test_dashboard_browser.py).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "the browser test needs chromium and chromium-driver: sudo apt-get install chromium chromium-driver"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) outputs .pytest_cache
