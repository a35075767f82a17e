# camactor: `make run` starts the service, `make test` runs the whole test suite,
# `make docs` builds the reference manual into docs/_build/html.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= etc/camactor.yml

.PHONY: run test lint bench install broker devices docs clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV)
	@touch $(STAMP)

install: $(STAMP)

broker:
	bash scripts/ensure_broker.sh

devices:
	bash scripts/ensure_devices.sh

run: install broker
	$(PY) -m actor -c $(CONFIG) actor --foreground

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check camera_core actor tests benchmarks

test: install broker devices
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# The manual: the docs extra, then Sphinx with warnings as errors. -E rereads
# every page, since the reference pages are generated from the code.
$(VENV)/.docs-installed: $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	@touch $@

docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -E -b html docs docs/_build/html

# Benchmarks (not part of make test): about 10 minutes on 2 cores. Each script
# writes benchmarks/results/<name>.json; the summary goes into the README.
bench: install broker
	cd benchmarks && ../$(PY) bench_write.py
	cd benchmarks && ../$(PY) bench_stall.py
	cd benchmarks && ../$(PY) bench_actor.py
	cd benchmarks && ../$(PY) bench_cameras.py
	cd benchmarks && ../$(PY) bench_memory.py
	cd benchmarks && ../$(PY) bench_bindings.py
	cd benchmarks && ../$(PY) summary.py --write ../README.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info docs/_build
