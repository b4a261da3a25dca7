# The two commands of the README's quick start: `make demo` and `make test`.
# Each one sets up what it needs first (scripts/bootstrap.sh: .venv, Debian packages).
PY := .venv/bin/python
PYTEST := $(PY) -m pytest

.PHONY: demo test test-slow test-all lint setup

demo:  ## build the demo catalog, train, evaluate and print the results
	bash scripts/bootstrap.sh --with-data
	$(PY) -m stylesearch demo

test:  ## the fast test suite (a few minutes)
	bash scripts/bootstrap.sh
	$(PYTEST) -m "not slow and not browser" -q

test-slow:  ## the slow and browser tests: training runs, torchrun, real demo build, Chromium, Milvus
	bash scripts/bootstrap.sh --with-data --with-browser
	$(PYTEST) -m "slow or browser" -q --durations=10

test-all: test test-slow

lint:
	bash scripts/bootstrap.sh
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

setup:
	bash scripts/bootstrap.sh --with-data
