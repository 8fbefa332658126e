# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench docs clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m tinygrad_cnn demo

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

# The API reference and guides as a static site in site/ (open site/index.html); broken references fail.
docs: setup
	$(PY) -m mkdocs build --strict

bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
