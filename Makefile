# Two entry points: `make study` sets up and runs the whole study,
# `make test` sets up and runs the test suite (what CI runs).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
GPUS ?= 1

.PHONY: study test setup setup-test smoke lint bench

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/snakemake

# CLIP_benchmark 1.6.2 fails under numpy 2.4; its side environment reuses
# the main one with an older numpy, for the metric-parity test and benchmarks.
.venv-cb/bin/python: $(BIN)/snakemake
	PYTHON=$(PYTHON) bash benchmarks/setup_clip_benchmark_env.sh

setup-test: setup .venv-cb/bin/python

study: setup
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$(GPUS)

smoke: setup
	$(BIN)/python -m clipstudy.smoke smoke

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

test: setup-test
	$(BIN)/python -m pytest

bench: setup-test
	$(VENV)-cb/bin/python benchmarks/zeroshot_speed.py
	$(BIN)/python benchmarks/encode_memory.py --sizes 1000 20000
