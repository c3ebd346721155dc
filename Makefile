# Two entry points for a fresh machine (see README.md):
#   make demo   sets everything up, then runs the main job (built-in synthetic task)
#   make test   sets everything up, then runs the tests on TensorFlow, JAX and PyTorch
#               and executes the tutorial notebooks at their smoke scale
# plus `make docs` (mkdocs build --strict), `make docs-check` (every page in
# headless Chromium) and `make benchmark`.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
BACKEND ?= jax
PYTEST_ARGS ?=
# Test processes per backend session (pytest-xdist; whole files per
# process, so that a module's fixtures and compiled functions are shared).
# `make test PYTEST_WORKERS=1` runs in one process.
PYTEST_WORKERS ?= 2
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-backends notebooks docs docs-assets docs-check benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/ci-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/ci-cpu.txt \
		-e ".[jax,torch,tensorflow,hub,experiments,docs,dev]" \
		tensorflow-text tensorflow-datasets importlib_resources keras-nlp \
		triton
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

demo: setup
	KERAS_BACKEND=jax $(PY) -m keras_neural_attention.cli demo

test: test-backends notebooks

test-backends: setup
	@set -e; for backend in $(BACKENDS); do \
		echo "=== pytest, KERAS_BACKEND=$$backend ==="; \
		KERAS_BACKEND=$$backend $(PY) -m pytest tests -q -p no:cacheprovider \
			$(if $(filter-out 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile) \
			$(PYTEST_ARGS); \
	done

notebooks: setup
	KERAS_BACKEND=jax $(PY) -m keras_neural_attention.cli notebooks --scale smoke --jobs 2

# MathJax for the site comes from the npm registry (docs/package-lock.json).
docs-assets:
	npm ci --prefix docs --no-audit --no-fund

docs: setup docs-assets
	KERAS_BACKEND=jax $(VENV)/bin/mkdocs build --strict

# Opens every built page in headless Chromium (Debian's `chromium`).
docs-check: docs
	$(PY) docs/scripts/check_site.py site

benchmark: setup
	KERAS_BACKEND=$(BACKEND) $(PY) benchmarks/attention_benchmark.py

clean:
	rm -rf $(VENV) site results docs/node_modules
