# Two commands for a fresh machine: `make demo` and `make test`.
# Everything downloaded is cached in ignored folders (.venv, .cache); servers run from .sluice.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip

.PHONY: install demo test test-large lint unit chaos bench up down status clean

# C sources too: a changed codec is rebuilt in place by the editable install.
$(BIN)/sluice-installed: pyproject.toml setup.py $(wildcard schemas/*.c schemas/*.h source_connectors/mysql/*.c sink_connectors/mysql/*.c)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Sluice needs Python 3.11+, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Python packages, then the servers' software: Kafka jars (Maven Central) and MariaDB (Debian).
install: $(BIN)/sluice-installed
	$(BIN)/sluice local install

up: install
	$(BIN)/sluice local up

down:
	$(BIN)/sluice local down

status:
	$(BIN)/sluice local status

demo: install
	$(BIN)/sluice local up
	$(BIN)/sluice demo

lint: $(BIN)/sluice-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest -q -ra --durations=15

unit: $(BIN)/sluice-installed
	$(BIN)/pytest -q tests/unit

# The long randomized crash test (1M rows, random task faults and broker kills; prints what it injected),
# then the differential test with its long budget (SLUICE_DIFF_EXAMPLES=N to change it).
chaos: install
	SLUICE_CHAOS_LONG=1 $(BIN)/pytest -q -ra -s tests/chaos -k randomized
	SLUICE_CHAOS_LONG=1 $(BIN)/pytest -q -ra tests/differential

# The 1M-row type matrix of the snapshot tests (minutes, not in make test).
test-large: install
	SLUICE_SLOW=1 $(BIN)/pytest -q -ra tests/integration/test_snapshot_sync.py

# Every benchmark, Debezium anchor and physical limits included (tens of minutes; BENCH_QUICK=1
# for small sizes), then BENCHMARKS.md and its chart. matplotlib (the `bench` extra) only here.
bench: install
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench.run_all > .cache/bench.jsonl
	$(BIN)/python -m bench.report .cache/bench.jsonl > BENCHMARKS.md

clean:
	-$(BIN)/sluice local down
	rm -rf .sluice
