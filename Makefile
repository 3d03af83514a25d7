# The two commands of the README. Each sets up what it needs first and is safe to repeat.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: run test install test-deps run-deps system-deps bench-deps lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall only when the package definition changed.
$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# apt-get as root: through sudo for anyone else.
APT := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

# Debian packages a running opsjob needs: bubblewrap to contain playbook steps, git for their
# git sources, and an ssh client to reach the nodes. Installed only when one is missing.
run-deps:
	@if ! command -v bwrap >/dev/null 2>&1 || ! command -v git >/dev/null 2>&1 || \
	    ! command -v ssh >/dev/null 2>&1; then \
	  ($(APT) update -qq || true) && \
	  $(APT) install -y -qq bubblewrap git openssh-client; fi

# What the test suite needs beyond that: a real sshd for the loopback nodes, sudo for become,
# the interpreters a cmd step may name, and a headless browser for the page tests.
system-deps: run-deps
	@if [ ! -x /usr/sbin/sshd ] || ! command -v sudo >/dev/null 2>&1 || \
	    ! command -v php >/dev/null 2>&1 || ! command -v perl >/dev/null 2>&1 || \
	    [ ! -x /usr/bin/chromium ]; then \
	  ($(APT) update -qq || true) && \
	  $(APT) install -y -qq openssh-server sudo php-cli perl chromium; fi

# What the benchmarks in bench/ need beyond the test suite: wrk for the read benchmarks.
bench-deps: install system-deps
	@command -v wrk >/dev/null 2>&1 || { ($(APT) update -qq || true) && \
	  $(APT) install -y -qq wrk; }

run: install run-deps
	$(BIN)/opsjob init
	$(BIN)/opsjob bootstrap --host $(HOST) --port $(PORT)
	$(BIN)/opsjob up --host $(HOST) --port $(PORT)

test: install system-deps
	$(BIN)/ruff check engine api tests bench inventory_plugins
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check engine api tests bench inventory_plugins
	$(BIN)/mypy
	$(BIN)/ruff format --check engine api tests bench inventory_plugins

clean:
	rm -rf $(VENV) var
