# phm-fhir: `make run` serves the embedded database with a synthetic region; `make test` runs
# the whole suite on SQLite and PostgreSQL (PHM_TEST_POSTGRES_URL, default the local server).
VENV ?= .venv
PY := $(VENV)/bin/python
PHM := $(VENV)/bin/phm
PYTHON ?= python3

.PHONY: install run test lint openapi bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PHM) migrate
	$(PHM) seed --if-empty
	$(PHM) stratify
	$(PHM) serve

test: install
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench

openapi: install
	$(PY) -m app.openapi > openapi/openapi.json

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/search.py

clean:
	rm -rf $(VENV) var
