# The two commands of the README: `make demo` and `make test`. Both set up what they need first
# (scripts/setup.sh: `demo` the package with its viz and progress extras, `test` also the dev tools
# and PyTorch CPU); a repeated run finds its stamp and skips the set-up.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-demo setup-test demo test lint bench docs clean

setup: setup-test

setup-demo:
	@bash scripts/setup.sh demo

setup-test:
	@bash scripts/setup.sh test

demo:
	@echo "make demo: 1. set-up (.venv, about a minute the first time)  2. data (Fashion-MNIST)  3. training (SimpleConvNet, 1 epoch)  4. pictures (demo-output/)"
	@bash scripts/setup.sh demo
	$(PY) -m tinygrad_cnn demo

test: setup-test
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup-test
	$(PY) -m ruff check .

# The API reference and guides as a static site in site/ (open site/index.html); a broken reference,
# a public name missing from docs/reference/ or one without a docstring fails the build.
docs: setup-test
	$(PY) -m mkdocs build --strict

bench: setup-test
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
