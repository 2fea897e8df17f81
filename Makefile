# radpersona - two commands on a fresh machine:
#   make run    create .venv, install everything (NiftyReg's reg_aladin included), run the pipeline
#   make test   the same install, then the fast test suite (every test not marked slow, slurm or scale; ~4 min)
#   make test-slow    the whole-DAG runs (marker slow: smoke DAG, sources, controls, MRNet-size ingest; most of CI)
#   make test-scale   the paper preset's dry run at MRNet's size (tens of minutes; in neither of the above)
#   make test-control only the DAG's positive and negative controls (tests/test_controls.py; part of test-slow)
#   make test-slurm   the SLURM cluster test (needs a reachable controller: .ci/start-slurm.sh; CI runs it after test and test-slow)
#   make lint   ruff (lint and format check), mypy and snakemake --lint
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
CORES   ?= all
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-slow test-scale test-control test-slurm lint clean

$(STAMP): requirements.txt requirements-dev.txt requirements-niftyreg.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@# NiftyReg: prefer a reg_aladin on PATH; otherwise build the `niftyreg` package (~2 min, once)
	if command -v reg_aladin >/dev/null 2>&1; then echo "using $$(command -v reg_aladin)"; \
	else CMAKE_POLICY_VERSION_MINIMUM=3.5 $(PY) -m pip install --quiet -r requirements-niftyreg.txt; fi
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --rerun-incomplete $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow and not slurm and not scale" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -m "slow and not slurm and not scale" $(PYTEST_ARGS)

test-scale: $(STAMP)
	$(VENV)/bin/python -m pytest -m scale $(PYTEST_ARGS)

test-control: $(STAMP)
	$(VENV)/bin/python -m pytest -m control -s $(PYTEST_ARGS)

test-slurm: $(STAMP)
	$(VENV)/bin/python -m pytest -m slurm $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/snakemake --lint

clean:
	rm -rf results .snakemake
