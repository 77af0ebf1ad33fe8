# Orderflow — `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-faults lint format typecheck contracts migrate check-migrations bench up down clean screenshots

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## migrate, then serve the API with a Celery worker and Beat (embedded mode unless DATABASE_URL/REDIS_URL are set)
	$(PY) -m backend run

test: $(STAMP) ## run the test suite but the fault suite (PostgreSQL/Redis tests need TEST_DATABASE_URL/TEST_REDIS_URL)
	$(PY) -m pytest -m "not faults" $(PYTEST_ARGS)

test-faults: $(STAMP) ## the fault suite: the stack against a PostgreSQL (initdb, pg_ctl) and a redis-server it starts, stops and kills
	$(PY) -m pytest -m faults tests/faults $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check), mypy, import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy backend worker bench
	$(VENV)/bin/lint-imports

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(STAMP) ## apply migrations to DATABASE_URL
	$(PY) -m backend migrate

check-migrations: $(STAMP) ## fail if the models and the migrations disagree
	$(VENV)/bin/alembic upgrade head
	$(VENV)/bin/alembic check

bench: $(STAMP) ## benchmarks, each a ratio against a baseline measured in the same run
	$(PY) -m bench

up: ## full mode in containers (PostgreSQL, Redis, API, worker, Beat, Prometheus)
	docker compose up --build

down: ## stop the containers
	docker compose down

clean: ## remove the virtualenv, caches and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

screenshots: $(STAMP) ## run the console's browser tests and save their screenshots in docs/screenshots
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser -p no:cacheprovider
