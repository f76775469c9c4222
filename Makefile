# vitseg: every target sets up .venv first if needed (python3.11 + pip; no conda needed).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vitseg-installed

.PHONY: env demo lab test test-network lint typecheck pytest notebooks-ci sync run smoke clean browser

env: $(STAMP)

# pyproject.toml gives the ranges vitseg works with; constraints.txt pins the tested set (torch 2.13.0 CPU)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## The offline demo: simulated scenes over the real Obuasi and Kibi mining boxes -> reports/demo/
demo: env
	$(VENV)/bin/vitseg run params/demo.yaml

## Everything CI checks: lint, types, unit tests, every notebook with params/ci.yaml, and the real-data experiment
test: env browser lint typecheck pytest notebooks-ci

## The live real path: search Earth Search over Ghana, build a small cube, predict it (needs the internet)
test-network: env
	$(VENV)/bin/pytest -m network tests/test_network.py

browser:
	@bash scripts/ensure_chromium.sh

lint: env
	$(VENV)/bin/ruff check vitseg tests notebooks bench
	$(VENV)/bin/ruff format --check vitseg tests notebooks bench

typecheck: env
	$(VENV)/bin/mypy

pytest: env
	$(VENV)/bin/pytest

notebooks-ci: env
	rm -rf reports/ci/figures
	$(VENV)/bin/vitseg run params/ci.yaml --force
	$(PY) scripts/check_figures.py reports/ci
	$(VENV)/bin/vitseg run params/ghana_earthrise.yaml --force

## Pair notebooks/*.py with .ipynb for JupyterLab (the .ipynb are gitignored)
sync: env
	$(VENV)/bin/jupytext --sync notebooks/*.py

## JupyterLab on the repository, notebooks paired; after `make demo` they run cell by cell on its outputs
lab: sync
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. notebooks/01_grid_aoi.ipynb

## make run EXP=params/ghana_earthrise.yaml [ONLY=08_monitoring]
run: env
	$(VENV)/bin/vitseg run $(EXP) $(if $(ONLY),--only $(ONLY),)

## Fast check that the package imports and the CLI answers
smoke: env
	$(PY) -c "import vitseg, vitseg.compat; print('vitseg', vitseg.__version__)"
	$(VENV)/bin/vitseg --version
	$(PY) -m vitseg --help > /dev/null

clean:
	rm -rf reports/ci reports/ci_real reports/demo data/synthetic data/standin .pytest_cache .mypy_cache .ruff_cache
