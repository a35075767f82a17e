# camactor: `make run` starts the service, `make test` runs the whole test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= etc/camactor.yml

.PHONY: run test lint bench install broker devices clean

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

# Benchmarks (not part of make test): about 10 minutes on 2 cores. Each script
# writes benchmarks/results/<name>.json; the summary goes into the README.
bench: install broker
	cd benchmarks && ../$(PY) bench_write.py
	cd benchmarks && ../$(PY) bench_stall.py
	cd benchmarks && ../$(PY) bench_actor.py
	cd benchmarks && ../$(PY) bench_cameras.py
	cd benchmarks && ../$(PY) bench_memory.py
	cd benchmarks && ../$(PY) summary.py --write ../README.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
