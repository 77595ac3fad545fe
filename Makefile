# Two commands matter: `make demo` and `make test`. Both set up .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.sha256
export PYTHONPATH := $(CURDIR)

LANDING ?=
LAKEHOUSE ?= .lakehouse/lakehouse
# CONNECT=1: the notebooks' spark is a Spark Connect client, as on Databricks serverless.
CONNECT ?=
CONNECT_FLAG := $(if $(CONNECT),--connect,)

.PHONY: setup test lint demo sdp pipeline follow sql dashboard purge-raw bench clean

setup:
	@scripts/check_prereqs.sh >/dev/null
	@if [ ! -x $(PY) ]; then \
	  echo "creating $(VENV) with $$(scripts/check_prereqs.sh)"; \
	  "$$(scripts/check_prereqs.sh)" -m venv $(VENV) || { echo "error: could not create $(VENV)" >&2; exit 1; }; \
	fi
	@want="$$(sha256sum requirements.txt | cut -d' ' -f1)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
	  echo "installing requirements.txt into $(VENV)"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt && \
	  echo "$$want" > $(STAMP) || { echo "error: installing requirements.txt failed (see above); fix and re-run" >&2; exit 1; }; \
	fi

test: lint
	@scripts/ensure_chromium.sh
	$(PY) -m pytest

# Style, the import contracts in pyproject.toml (the package shipped to Databricks imports nothing
# local-only; dependencies point one way), and dead code.
lint: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(VENV)/bin/vulture

demo: setup
	$(PY) -m lakehouse_local demo $(CONNECT_FLAG)

# The declarative edition (databricks/pipelines) with spark-pipelines: over the embedded S3 and the producer as
# `make demo` runs them, or over LANDING (its folder, SDP_FOLDER, is then kept: a re-run is incremental).
SDP_FOLDER ?= $(if $(LANDING),.lakehouse/sdp-landing,.lakehouse/sdp)
sdp: setup
	$(PY) -m lakehouse_local sdp --folder "$(SDP_FOLDER)" $(if $(LANDING),--landing "$(LANDING)",)

pipeline: setup
	@if [ -z "$(LANDING)" ]; then echo "usage: make pipeline LANDING=<s3://bucket/prefix or folder> [LAKEHOUSE=<folder>] [CONNECT=1]" >&2; exit 2; fi
	$(PY) -m lakehouse_local pipeline --landing "$(LANDING)" --lakehouse "$(LAKEHOUSE)" $(CONNECT_FLAG)

follow: setup
	$(PY) -m lakehouse_local follow $(CONNECT_FLAG)

sql: setup
	@if [ -z "$(Q)" ]; then echo 'usage: make sql Q="SELECT * FROM gold.daily_kpis" [LAKEHOUSE=<folder>]' >&2; exit 2; fi
	$(PY) -m lakehouse_local sql --lakehouse "$(LAKEHOUSE)" "$(Q)"

dashboard: setup
	$(PY) -m lakehouse_local.dashboard --lakehouse "$(if $(filter .lakehouse/lakehouse,$(LAKEHOUSE)),.lakehouse/demo/lakehouse,$(LAKEHOUSE))"

# Remove the raw text of lines older than RETENTION_DAYS (notebook 90, as the Databricks retention job runs it).
RETENTION_DAYS ?= 30
purge-raw: setup
	$(PY) -m lakehouse_local purge-raw --lakehouse "$(LAKEHOUSE)" --retention-days "$(RETENTION_DAYS)"

bench: setup
	$(PY) -m benchmarks.run

clean:
	rm -rf .lakehouse .pytest_cache .ruff_cache spark-warehouse test-artifacts
