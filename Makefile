# One entry point per job. Every target installs what it needs first, so a fresh clone
# needs nothing but `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
IEMOCAP ?=
STORE  ?= features.zarr

.PHONY: install test demo lint features clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ser tests benchmarks
	$(BIN)/ruff format --check ser tests benchmarks
	$(BIN)/mypy

demo: $(STAMP)
	BIN=$(BIN) bash scripts/demo.sh $(DEMO)

features: $(STAMP)
	@if [ -z "$(IEMOCAP)" ]; then \
	  echo "usage: make features IEMOCAP=/path/to/IEMOCAP_full_release [STORE=features.zarr]"; exit 2; fi
	$(BIN)/ser extract "$(IEMOCAP)" --store "$(STORE)" --features hubert,mpnet,bert,is13,logmel

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
