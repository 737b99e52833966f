# sunnypilot-training developer targets. `make test` works on a fresh clone (it creates .venv if missing).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := constraints/dev.txt
STAMP := $(VENV)/.installed

.PHONY: venv test test-slow test-all lint pipeline clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) "setuptools>=68" wheel torch
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --no-build-isolation -e ".[dev]"
	touch $(STAMP)

# the test files spread over the cores (each file in one process, so its fixtures are built once; at most 4)
PYTEST_PARALLEL ?= -n auto --maxprocesses=4 --dist loadfile

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

test-slow: venv
	$(BIN)/python -m pytest -q -m slow $(PYTEST_PARALLEL)

test-all: venv
	$(BIN)/python -m pytest -q -m "slow or not slow" $(PYTEST_PARALLEL)

pipeline: venv
	$(BIN)/sptrain pipeline --preset quick --output-dir artifacts/pipeline

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf build dist *.egg-info .pytest_cache
