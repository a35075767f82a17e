# camactor: `make run` starts the service, `make test` runs the whole test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= etc/camactor.yml

.PHONY: run test lint install broker devices clean

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

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
