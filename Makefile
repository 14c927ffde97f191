# Flightline: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
export AIRFLOW_HOME ?= $(ROOT)/.airflow
export PATH := $(VENV)/bin:$(PATH)
export GX_ANALYTICS_ENABLED := false
export NO_ALBUMENTATIONS_UPDATE := 1
DATE ?= 2013-03-15
DB ?= sqlite

.PHONY: install airflow-init demo test test-fast lint bench airflow serve monitoring-ui clean

install:  ## create .venv and install every pinned dependency (horovod built from source)
	bash infra/install.sh

airflow-init: install  ## render .airflow/airflow.cfg and migrate the metadata DB (DB=sqlite, the default, or DB=postgres)
	bash infra/airflow-init.sh $(DB)

demo: airflow-init  ## install everything, then run the main job for DATE on embedded defaults
	bash infra/demo.sh $(DATE)

test: airflow-init  ## install everything and run the whole test suite (slow tests included)
	$(VENV)/bin/python -m pytest

test-fast: airflow-init  ## the suite without tests marked slow
	$(VENV)/bin/python -m pytest -m "not slow"

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff check --select AIR3 --preview dags plugins
	$(VENV)/bin/hadolint --config .hadolint.yaml infra/Dockerfile infra/Dockerfile.gpu

bench: airflow-init  ## run every benchmark under bench/
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

airflow: airflow-init  ## api-server, execution API, scheduler, dag-processor, triggerer (and PostgreSQL with DB=postgres); UI on http://localhost:8080 (one Ctrl-C stops all)
	$(VENV)/bin/python infra/airflow_stack.py --db $(DB)

serve: install  ## serve the released model on http://127.0.0.1:3000 (after `make demo`)
	$(VENV)/bin/flightline serve

monitoring-ui: install  ## Evidently's UI over the monitored days on http://127.0.0.1:8000 (after `make demo`)
	$(VENV)/bin/flightline monitoring-ui

clean:  ## remove local data and Airflow state (keeps .venv)
	rm -rf data .airflow .bentoml
