# One entry point per job. Every target installs what it needs first, so a fresh clone
# needs nothing but `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
IEMOCAP ?=
STORE  ?= features.zarr

.PHONY: install test test-all test-busy test-avx2 demo tour lint features clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The fast loop: every test but the `slow` tier (busy machines, statistics over seeds,
# process kills, dask clusters), which `make test-all` adds. One test process per core
# (pytest-xdist), a test file to a process so that its fixtures are built once; each
# process runs torch on one thread (tests/conftest.py), as the suite always has. Bytecode is
# written even where the environment says not to (PYTHONDONTWRITEBYTECODE): each process
# rewrites every test module's asserts as it collects, 6 s of its start that the next run
# then reads back from __pycache__ instead.
PYTEST := env PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n auto --dist loadfile

test: $(STAMP)
	$(PYTEST) -m "not slow"

test-all: $(STAMP)
	$(PYTEST) --durations=15

# The suite on a busy machine: one CPU-bound competitor per core for its whole run.
test-busy: $(STAMP)
	bash scripts/busy.sh $(PYTEST)

# `make test` as an AVX2-only CPU runs it (no AVX-512, no AMX, no native bf16), on any
# x86-64: what the fast tier's time on a 2-core AVX2 machine is measured by.
test-avx2: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(PYTEST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check ser tests benchmarks
	$(BIN)/ruff format --check ser tests benchmarks
	$(BIN)/mypy

# The main job on the synthetic corpus in a few minutes; the tour is every command ser has.
demo: $(STAMP)
	BIN=$(BIN) bash scripts/demo.sh $(DEMO)

tour: $(STAMP)
	BIN=$(BIN) bash scripts/tour.sh $(DEMO)

features: $(STAMP)
	@if [ -z "$(IEMOCAP)" ]; then \
	  echo "usage: make features IEMOCAP=/path/to/IEMOCAP_full_release [STORE=features.zarr]"; exit 2; fi
	$(BIN)/ser extract "$(IEMOCAP)" --store "$(STORE)" --features hubert,mpnet,bert,is13,logmel

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
