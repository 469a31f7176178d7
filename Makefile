# The verbs people use. Every target creates .venv and installs the project when needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3000
SERVE_PORT ?= 8000
MLFLOW_PORT ?= 5000
# The daemon logs every sensor tick at INFO (twice per tick, every 5 s); at WARNING an idle
# `make dev` stays quiet and the tick's reasons are on the UI's sensor pages.
DEV_LOG_LEVEL ?= warning

# Dagster wants an absolute DAGSTER_HOME; both honour the caller's environment.
export DAGSTER_HOME := $(abspath $(or $(DAGSTER_HOME),.dagster_home))
export ML_ASSETS_DATA_DIR := $(abspath $(or $(ML_ASSETS_DATA_DIR),data))

.PHONY: install instance browser dev materialize serve mlflow worker test test-fast bench bench-serving bench-new-model bench-gate bench-search bench-threads bench-latency lint

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# The default instance's dagster.yaml is written once; an instance's own (PostgreSQL in
# production: deploy/dagster.yaml) is never overwritten.
instance:
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp config/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## dev: the Dagster UI and daemon (schedule and sensors running) on http://$(HOST):$(PORT);
## a model YAML added or changed in ml_assets/defs/ reloads the code location by itself
dev: install instance
	@echo "Dagster UI on http://$(HOST):$(PORT) (daemon and webserver log at $(DEV_LOG_LEVEL); DEV_LOG_LEVEL=info for every tick)"
	@$(BIN)/ml-assets watch-defs --host $(HOST) --port $(PORT) & watcher=$$!; \
	trap 'kill $$watcher 2>/dev/null' EXIT INT TERM; \
	$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT) --log-level $(DEV_LOG_LEVEL)

## materialize: a headless training run (reference data to production model) of every
## declared model, one run each; MODEL=name for one of them
materialize: install instance
	@models="$(or $(MODEL),$$($(BIN)/ml-assets list --names))"; failed=""; \
	for model in $$models; do \
	  echo "== $${model}_training_job"; \
	  $(BIN)/dagster job execute -m ml_assets.definitions -j "$${model}_training_job" || failed="$$failed $$model"; \
	done; \
	if [ -n "$$failed" ]; then echo "training failed for:$$failed"; exit 1; fi

## serve: the HTTP prediction service for every declared model on http://$(HOST):$(SERVE_PORT)
## (follows each model's production version; docs on /docs)
serve: install
	$(BIN)/ml-assets serve --host $(HOST) --port $(SERVE_PORT)

## mlflow: a local MLflow server (its UI too) on http://$(HOST):$(MLFLOW_PORT), its runs and
## registry kept in the data folder; then MLFLOW_TRACKING_URI=http://$(HOST):$(MLFLOW_PORT) make dev
mlflow: install
	mkdir -p $(ML_ASSETS_DATA_DIR)/mlflow
	$(BIN)/mlflow server --host $(HOST) --port $(MLFLOW_PORT) \
	  --backend-store-uri sqlite:///$(ML_ASSETS_DATA_DIR)/mlflow/mlflow.db \
	  --artifacts-destination $(ML_ASSETS_DATA_DIR)/mlflow/artifacts

## worker: a Celery worker that runs the steps of runs launched with deploy/run_on_celery.yaml
worker: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dagster-celery worker start -A dagster_celery.app -y deploy/celery_worker.yaml

## browser: Debian's Chromium for the UI tests (Playwright's own download cannot work here),
## installed when missing and root; otherwise the browser tests skip, saying so (CI fails them)
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing and this is not root: the browser tests will skip (apt-get install chromium)"; \
	  fi; }

## test: the whole suite, the live end-to-end tests (real dagster dev, browser) included
test: install browser
	$(BIN)/python -m pytest

## test-fast: the suite without the slow and live end-to-end tests
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not e2e"

## bench: the plain script against our graph at 442, 100 000 and 1 000 000 rows (about 40 min here),
## then the prediction service under wrk (2 min); writes docs/performance.md and
## docs/serving-performance.md. BENCH_ARGS="--sizes 442 --repeats 3" for a quick look.
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.serving

## bench-new-model: new-model's inference on a 1 000 000-row export (docs/new-model-performance.md)
bench-new-model: install
	$(BIN)/python -m bench.new_model $(BENCH_ARGS)

## bench-gate: the gate's statistics on 10 000 and 100 000 holdout rows (docs/gate-performance.md)
bench-gate: install
	$(BIN)/python -m bench.gate $(BENCH_ARGS)

## bench-search: a 60 s declared search against each default kind (docs/search-performance.md)
bench-search: install
	$(BIN)/python -m bench.search $(BENCH_ARGS)

## bench-threads: a search's first round idle and beside a busy process (docs/threads-performance.md)
bench-threads: install
	$(BIN)/python -m bench.threads $(BENCH_ARGS)

## bench-latency: five files landed one at a time under dagster dev, each to its decision with the
## anatomy of its run, and make materialize against the plain script (docs/latency-performance.md)
bench-latency: install
	$(BIN)/python -m bench.latency $(BENCH_ARGS)

## bench-serving: the prediction service's part of the bench alone
bench-serving: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.serving

lint: install
	$(BIN)/ruff check ml_assets ml_assets_tests bench harness
